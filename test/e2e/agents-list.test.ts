import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../src/gateway/gateway-server.js';
import { readInventory } from '../../src/host/inventory.js';
import type { HostInventory } from '../../src/host/types.js';
import { createLogger } from '../../src/log.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import { newTestRunId, removeTestNetwork, requireDocker } from '../helpers/docker.js';
import { sweepByLabel } from '../helpers/engine.js';
import { startTestAgent, tempDir, testConfig, type TestAgent } from '../helpers/agent-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { gatewayClient, type ApiAnswer } from '../helpers/gateway-client.js';
import { FAKE_BIN_DIR, fixtureHostDir, type FixtureHost } from '../fixtures/hosts/gpu-devices.js';

const docker = await requireDocker('agents list e2e tests');
const SK = 'sk-e2e-agents-list-0123456789';
const DK = 'dk-e2e-agents-list-0123456789';
const AK = 'ak-e2e-agents-list-0123456789';
const MIB = 1024 * 1024;

/** The keys of one agent in Cyberun's `GET /agents` reference (../shared/design/CYBERUN-API.md). */
const AGENT_KEYS = ['agent_id', 'agent_labels', 'agent_status', 'agent_version', 'connected_at', 'gpu_capacity', 'last_heartbeat', 'platform_arch', 'running_count', 'system_stats'];
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface GpuDeviceJson {
  device_name: string;
  device_type: string;
  vram_total: number | null;
  vram_free: number | null;
}
interface AgentJson {
  agent_id: string;
  agent_status: string;
  agent_labels: string[];
  last_heartbeat: string | null;
  gpu_capacity: number;
  platform_arch: string;
  connected_at: string;
  system_stats: { gpu_devices: GpuDeviceJson[] };
  [key: string]: unknown;
}
interface AgentPage {
  agent_list: AgentJson[];
  page_meta: { current_page: number; per_page: number; total_count: number };
  error_message?: string;
}

/** What Cyberun's list shows for a fixture host: its captured nvidia-smi rows, MiB → bytes. */
function expectedDevices(host: FixtureHost): GpuDeviceJson[] {
  if (host === 'nogpu') return [];
  const rows = JSON.parse(readFileSync(`${fixtureHostDir(host)}/gpus.json`, 'utf8')) as Record<string, string>[];
  return rows.map((row) => ({
    device_name: String(row['name']),
    device_type: 'cuda',
    vram_total: Number(row['memory.total']) * MIB,
    vram_free: Number(row['memory.free']) * MIB,
  }));
}

/**
 * Real agents on faked GPU hosts (the captured nvidia-smi/lspci fixtures served by
 * test/fixtures/bin, read through the agent's own inventory) connected to a real local gateway:
 * both agent list endpoints in Cyberun's documented shape, VRAM in bytes, pagination bounds.
 */
describe.skipIf(!docker)('GET /agents and GET /r/agents with real agents on faked GPU hosts', () => {
  const runId = newTestRunId('agents');
  const logger = createLogger({ level: (process.env['TEST_LOG_LEVEL'] as 'warn' | undefined) ?? 'silent' });
  let gateway: Gateway;
  let api: ReturnType<typeof gatewayClient>;
  const agents = new Map<FixtureHost, TestAgent>();
  const stopped = new Set<FixtureHost>();
  const idOf = (host: FixtureHost): string => agents.get(host)!.config.agentId;
  const get = (path: string): Promise<ApiAnswer<AgentPage>> => api.call<AgentPage>('GET', path);

  beforeAll(async () => {
    gateway = await startGateway({ host: '127.0.0.1', port: 0, dataDir: await tempDir('agents-gw'), apiKeys: [SK, DK], agentKeys: [AK], logger, heartbeatIntervalMs: 300 });
    api = gatewayClient(gateway.url, SK);
    const hosts: FixtureHost[] = ['rtx4090x1', 'a100x4', 'nogpu'];
    const inventories = new Map<FixtureHost, HostInventory>();
    for (const host of hosts) {
      inventories.set(host, await readInventory({
        detect: 'auto',
        timeoutMs: 15_000,
        env: { ...process.env, PATH: `${FAKE_BIN_DIR}:${process.env['PATH'] ?? ''}`, CYBERUN_FAKE_GPU_HOST: fixtureHostDir(host) },
      }));
    }
    // The fixtures really were read (a fixture that stopped loading would make every check below vacuous).
    expect(inventories.get('rtx4090x1')?.gpus.map((g) => g.model)).toEqual(['NVIDIA GeForce RTX 4090']);
    expect(inventories.get('a100x4')?.gpus).toHaveLength(4);
    expect(inventories.get('nogpu')?.gpus).toEqual([]);
    await Promise.all(hosts.map(async (host) => {
      const config = testConfig(`${runId}-${host}`, await tempDir(`agents-${host}`), {
        gatewayUrl: gateway.agentUrl,
        agentKey: AK,
        agentLabels: ['zone-e2e'],
        gpu: { detect: 'auto', deviceStyle: 'device-ids', inventoryRefreshMs: 600_000, driverCapabilities: ['compute', 'utility'] },
      });
      agents.set(host, await startTestAgent(config, inventories.get(host)!, logger));
    }));
    // Every agent connected and has sent a heartbeat: the list shows the heartbeat's numbers.
    await waitFor('three agents with a heartbeat', async () => {
      const list = (await get('/agents?per_page=100')).body.agent_list;
      return list.length === 3 && list.every((a) => a.last_heartbeat !== null);
    }, 60_000, 100);
  });

  afterAll(async () => {
    for (const [host, a] of agents) if (!stopped.has(host)) await a.stop();
    await gateway?.close();
    for (const a of agents.values()) {
      await sweepByLabel(`${Labels.AGENT_ID}=${a.config.agentId}`);
      await removeTestNetwork(a.config.docker.network);
    }
  });

  it.each(['/agents', '/r/agents'])('%s answers {agent_list, page_meta} with each agent as Cyberun documents it, VRAM in bytes', async (path) => {
    const { status, body } = await get(path);
    expect(status).toBe(200);
    expect(Object.keys(body).sort()).toEqual(['agent_list', 'page_meta']);
    expect(body.page_meta).toEqual({ current_page: 1, per_page: 20, total_count: 3 });
    // Ordered by agent_id: test-<run>-a100x4, -nogpu, -rtx4090x1.
    expect(body.agent_list.map((a) => a.agent_id)).toEqual([idOf('a100x4'), idOf('nogpu'), idOf('rtx4090x1')]);
    for (const a of body.agent_list) {
      expect(Object.keys(a).sort()).toEqual(AGENT_KEYS);
      expect(a).toMatchObject({ agent_status: 'idle', running_count: 0, agent_version: expect.any(String) });
      expect(a.platform_arch).toMatch(/^linux\/[a-z0-9]+$/);
      expect(a.connected_at).toMatch(ISO);
      expect(a.last_heartbeat).toMatch(ISO);
      expect(a.agent_labels).toContain('zone-e2e');
      expect(Object.keys(a.system_stats)).toEqual(['gpu_devices']);
    }
    const byHost = (host: FixtureHost) => body.agent_list.find((a) => a.agent_id === idOf(host))!;

    const rtx = byHost('rtx4090x1');
    // 24564 MiB, as the captured nvidia-smi prints it, is 25 757 220 864 bytes.
    expect(rtx.system_stats.gpu_devices).toEqual([{ device_name: 'NVIDIA GeForce RTX 4090', device_type: 'cuda', vram_total: 25_757_220_864, vram_free: 25_757_220_864 }]);
    expect(rtx.system_stats.gpu_devices).toEqual(expectedDevices('rtx4090x1'));
    expect(rtx.gpu_capacity).toBe(1);
    expect(rtx.agent_labels).toEqual(expect.arrayContaining(['gpu', 'gpu-rtx-4090']));

    const a100 = byHost('a100x4');
    expect(a100.system_stats.gpu_devices).toEqual(expectedDevices('a100x4'));
    expect(a100.system_stats.gpu_devices[0]).toEqual({ device_name: 'NVIDIA A100-SXM4-40GB', device_type: 'cuda', vram_total: 40960 * MIB, vram_free: 37364 * MIB });
    expect(a100.gpu_capacity).toBe(4);
    expect(a100.agent_labels).toEqual(expect.arrayContaining(['gpu', 'gpu-a100']));

    const cpu = byHost('nogpu');
    expect(cpu.system_stats.gpu_devices).toEqual([]);
    expect(cpu.gpu_capacity).toBe(0);
    expect(cpu.agent_labels).not.toContain('gpu');
  });

  it('answers the same list on both paths', async () => {
    const withoutHeartbeat = (page: AgentPage) => ({ ...page, agent_list: page.agent_list.map(({ last_heartbeat: _hb, ...rest }) => rest) });
    const [management, runtime] = await Promise.all([get('/agents?per_page=2&current_page=1'), get('/r/agents?per_page=2&current_page=1')]);
    expect(management.body.agent_list).toHaveLength(2);
    expect(withoutHeartbeat(runtime.body)).toEqual(withoutHeartbeat(management.body));
  });

  it.each(['/agents', '/r/agents'])('%s paginates with current_page/per_page within 1–100, and refuses per_page=101 naming the limit', async (path) => {
    const page = async (query: string) => (await get(`${path}?${query}`)).body;
    const ids = [idOf('a100x4'), idOf('nogpu'), idOf('rtx4090x1')];

    const second = await page('per_page=1&current_page=2');
    expect(second.page_meta).toEqual({ current_page: 2, per_page: 1, total_count: 3 });
    expect(second.agent_list.map((a) => a.agent_id)).toEqual([ids[1]]);
    const tail = await page('per_page=2&current_page=2');
    expect(tail.agent_list.map((a) => a.agent_id)).toEqual([ids[2]]);
    const past = await page('per_page=2&current_page=3');
    expect(past).toEqual({ agent_list: [], page_meta: { current_page: 3, per_page: 2, total_count: 3 } });
    const max = await page('per_page=100');
    expect(max.page_meta).toEqual({ current_page: 1, per_page: 100, total_count: 3 });
    expect(max.agent_list.map((a) => a.agent_id)).toEqual(ids);

    const over = await get(`${path}?per_page=101`);
    expect(over.status).toBe(400);
    expect(over.body).toEqual({ error_message: 'per_page 101 must be an integer from 1 to 100' });
    for (const bad of ['per_page=0', 'per_page=abc', 'per_page=-1', 'current_page=0', 'current_page=1.5']) {
      const answer = await get(`${path}?${bad}`);
      expect(answer.status, bad).toBe(400);
      expect(answer.body.error_message, bad).toMatch(bad.startsWith('per_page') ? /^per_page .* must be an integer from 1 to 100$/ : /^current_page .* must be an integer ≥ 1$/);
    }
  });

  it.each([
    ['an sk- integration key', 200, SK, undefined],
    ['a dk- device key', 200, DK, undefined],
    ['no Authorization header', 401, null, /missing or malformed Authorization header/],
    ['an agent key', 403, AK, /agent keys \(ak-…\) authenticate only the agent tunnel/],
    ['a user JWT', 401, 'eyJhbGciOiJIUzI1NiJ9.e30.sig', /only sk- integration keys and dk- device keys/],
    ['an unknown sk- key', 401, 'sk-not-this-gateways', /invalid API key/],
  ])('/r/agents with %s answers %i, as /r/containers does', async (_name, status, key, message) => {
    const answers = await Promise.all(['/r/agents', '/r/containers'].map(async (path) => {
      const res = await fetch(`${gateway.url}/api/v1${path}`, { headers: key === null ? {} : { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(10_000) });
      return { status: res.status, body: (await res.json()) as { agent_list?: unknown[]; error_message?: string } };
    }));
    const [agentsAnswer, containersAnswer] = answers;
    expect(agentsAnswer?.status).toBe(status);
    expect(containersAnswer?.status).toBe(status);
    if (message === undefined) expect(agentsAnswer?.body.agent_list).toHaveLength(3);
    else expect(agentsAnswer?.body.error_message).toMatch(message);
  });

  it('drops a disconnected agent from both lists at once', async () => {
    await agents.get('nogpu')!.stop();
    stopped.add('nogpu');
    const after = await waitFor('two agents listed', async () => {
      const page = (await get('/r/agents')).body;
      return page.page_meta.total_count === 2 ? page : undefined;
    }, 10_000);
    expect(after.agent_list.map((a) => a.agent_id)).toEqual([idOf('a100x4'), idOf('rtx4090x1')]);
    expect((await get('/agents')).body.page_meta.total_count).toBe(2);
  });
});
