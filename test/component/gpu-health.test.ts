import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent as AgentClass } from '../../src/agent.js';
import type { readInventory as ReadInventory } from '../../src/host/inventory.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import { silentLogger } from '../../src/log.js';
import type { ServiceDefinition } from '../../src/service-definition/types.js';
import { FakeRuntime } from '../helpers/fake-runtime.js';
import { tempDir, testConfig } from '../helpers/agent-harness.js';
import { parsePromText } from '../helpers/prom-text.js';
import { testDefinition } from '../helpers/test-definition.js';
import { waitFor } from '../helpers/wait-for.js';
import { FAKE_BIN_DIR, fixtureHostDir, type FixtureHost } from '../fixtures/hosts/gpu-devices.js';
import { startGateway, type Gateway } from '../../src/gateway/gateway-server.js';
import { gatewayClient } from '../helpers/gateway-client.js';

/*
 * GPU health end to end inside the agent: the real inventory (systeminformation + the agent's own
 * nvidia-smi query) reads the captured hosts through the fake nvidia-smi, and the host changes under
 * the running agent by re-pointing CYBERUN_FAKE_GPU_HOST (a symlink) from rtxpro6000x4 to the same
 * host two days later with GPU1 unreachable (rtxpro6000x4-gpu1-lost), and back. Containers live in
 * a FakeRuntime, so a replica can be made to die on the GPU that failed.
 *
 * rtxpro6000x4: GPUs 0,1 on buses 16/34 (one PCI group), 2,3 on AC/CA (the other).
 */

let tmp: string;
let hostLink: string;
let fakePath: string;
let readInventory: typeof ReadInventory;
let Agent: typeof AgentClass;
const saved = { PATH: process.env['PATH'], HOST: process.env['CYBERUN_FAKE_GPU_HOST'] };
const LOST = 'nvidia-smi cannot open it: Unknown Error';

function useHost(host: FixtureHost): void {
  rmSync(hostLink, { force: true });
  symlinkSync(fixtureHostDir(host), hostLink);
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cyberun-gpu-health-'));
  hostLink = join(tmp, 'host');
  const nodeOnly = join(tmp, 'node-only');
  mkdirSync(nodeOnly);
  symlinkSync(process.execPath, join(nodeOnly, 'node'));
  useHost('rtxpro6000x4');
  fakePath = `${FAKE_BIN_DIR}:${nodeOnly}`;
  // systeminformation copies process.env when first loaded: point it at the fakes before that.
  process.env['PATH'] = fakePath;
  process.env['CYBERUN_FAKE_GPU_HOST'] = hostLink;
  ({ readInventory } = await import('../../src/host/inventory.js'));
  ({ Agent } = await import('../../src/agent.js'));
});

afterAll(() => {
  if (saved.PATH === undefined) delete process.env['PATH'];
  else process.env['PATH'] = saved.PATH;
  if (saved.HOST === undefined) delete process.env['CYBERUN_FAKE_GPU_HOST'];
  else process.env['CYBERUN_FAKE_GPU_HOST'] = saved.HOST;
  rmSync(tmp, { recursive: true, force: true });
});

describe('GPU health with captured broken-GPU output, on a running agent', () => {
  const runtime = new FakeRuntime();
  let agent: AgentClass;
  const services = new Map<string, ServiceDefinition>();
  let revision = 0;
  const apply = () => agent.reconciler.applyDesired([...services].map(([id, definition]) => ({ id, definition })), ++revision, 'test');
  const replicas = (serviceId: string) =>
    [...runtime.containers.values()].filter((c) => c.labels[Labels.SERVICE_ID] === serviceId).map((c) => ({ id: c.id, index: c.labels[Labels.REPLICA], gpus: c.gpuDeviceIds, state: c.state }));
  const gpuOf = (serviceId: string, index: number) => replicas(serviceId).find((r) => r.index === String(index))?.gpus;
  const replica = (serviceId: string, index: number) => agent.reconciler.statusSnapshot().find((s) => s.serviceId === serviceId)?.replicas.find((r) => r.index === index);
  const healthy = async () => parsePromText(await agent.metrics.text()).samples.filter((s) => s.name === 'cyberun_gpu_healthy').map((s) => [s.labels['gpu'], s.value]);

  beforeAll(async () => {
    const base = testConfig('gpu-health', await tempDir('gpu-health-state'));
    const config = { ...base, gpu: { detect: 'auto' as const, deviceStyle: 'device-ids' as const, inventoryRefreshMs: 150, driverCapabilities: ['compute', 'utility'] } };
    const env = { PATH: fakePath, CYBERUN_FAKE_GPU_HOST: hostLink };
    agent = await Agent.start({ config, logger: silentLogger(), runtime, readInventory: () => readInventory({ detect: 'auto', timeoutMs: 15_000, env }) });
    // The fixture really was read (a fixture that stopped loading would make every check vacuous).
    expect(agent.hostInventory().gpus.map((g) => [g.id, g.unhealthy])).toEqual([['0', undefined], ['1', undefined], ['2', undefined], ['3', undefined]]);
  });

  afterAll(async () => {
    await agent?.stop();
  });

  it('marks the GPU nvidia-smi can no longer open unhealthy; the replica holding it says so; /metrics shows it', async () => {
    services.set('llm', testDefinition('llm', { gpu_count: 1, replica_count: 2 }));
    apply();
    await waitFor('llm on GPUs 0 and 1', () => gpuOf('llm', 0)?.[0] === '0' && gpuOf('llm', 1)?.[0] === '1');
    expect(await healthy()).toEqual([['0', 1], ['1', 1], ['2', 1], ['3', 1]]);

    useHost('rtxpro6000x4-gpu1-lost');
    await waitFor('GPU 1 unhealthy in the inventory', () => agent.hostInventory().gpus.find((g) => g.id === '1')?.unhealthy === LOST);
    expect(agent.hostInventory().gpus.filter((g) => g.unhealthy !== undefined).map((g) => g.id)).toEqual(['1']);
    const onLost = await waitFor('the replica on GPU 1 names it', () => (replica('llm', 1)?.reason?.startsWith(`GPU 1 is unhealthy (${LOST})`) ? replica('llm', 1) : undefined));
    expect(onLost.gpuIds).toEqual(['1']);
    expect(replica('llm', 0)?.reason ?? '').not.toContain('unhealthy');
    expect(await healthy()).toEqual([['0', 1], ['1', 0], ['2', 1], ['3', 1]]);
    const status = agent.statusView();
    expect(status.gpus.find((g) => g.id === '1')?.unhealthy).toBe(LOST);
  });

  it('gives new replicas healthy GPUs only', async () => {
    services.set('embed', testDefinition('embed', { gpu_count: 1 }));
    apply();
    const got = await waitFor('embed created', () => gpuOf('embed', 0));
    expect(got).toEqual(['2']);
  });

  it('a replica that dies on the unhealthy GPU restarts on a healthy one', async () => {
    const dead = replicas('llm').find((r) => r.index === '1')!;
    const c = runtime.containers.get(dead.id)!;
    runtime.containers.set(dead.id, { ...c, state: 'exited', exitCode: 139, finishedAt: new Date().toISOString() });
    agent.reconciler.recheck(); // what the engine's "die" event does
    await waitFor('llm/1 recreated on GPU 3', () => gpuOf('llm', 1)?.[0] === '3', 15_000);
    expect(runtime.containers.has(dead.id)).toBe(false);
    expect(replicas('llm').map((r) => r.gpus[0]).sort()).toEqual(['0', '3']);
    expect(runtime.created.at(-1)?.labels[Labels.GPUS]).toBe('3');
  });

  it('waits, with a reason naming the unhealthy GPU, when no healthy GPU is free', async () => {
    services.set('whisper', testDefinition('whisper', { gpu_count: 1 }));
    apply();
    const pending = await waitFor('whisper pending', () => (replica('whisper', 0)?.phase === 'pending' ? replica('whisper', 0) : undefined));
    expect(pending.reason).toBe(`waiting for 1 GPU: 1 of 4 is unhealthy (1: ${LOST}); 3 of 4 are held by llm (0,3), embed (2)`);
    expect(gpuOf('whisper', 0)).toBeUndefined();
  });

  it('a GPU that is healthy again returns to the pool: the waiting replica gets it', async () => {
    useHost('rtxpro6000x4');
    await waitFor('whisper on GPU 1', () => gpuOf('whisper', 0)?.[0] === '1', 15_000);
    expect(agent.hostInventory().gpus.every((g) => g.unhealthy === undefined)).toBe(true);
    expect(await healthy()).toEqual([['0', 1], ['1', 1], ['2', 1], ['3', 1]]);
  });
});

describe('the gateway places by the agent’s healthy GPUs (real local gateway, real tunnel)', () => {
  const SK = 'sk-gpu-health-0123456789abcdef';
  const AK = 'ak-gpu-health-0123456789abcdef';
  let gateway: Gateway;
  let agent: AgentClass;
  let api: ReturnType<typeof gatewayClient>;
  const agentEntry = async () => (await api.call<{ agent_list: { agent_id: string; gpu_capacity: number }[] }>('GET', '/agents')).body.agent_list[0];
  const detail = async (slug: string) => (await api.runtime(slug)).body.status_detail;

  beforeAll(async () => {
    useHost('rtxpro6000x4');
    gateway = await startGateway({ host: '127.0.0.1', port: 0, dataDir: await tempDir('gpu-health-gw'), apiKeys: [SK], agentKeys: [AK], logger: silentLogger(), heartbeatIntervalMs: 200 });
    api = gatewayClient(gateway.url, SK);
    const base = testConfig('gpu-health-gw', await tempDir('gpu-health-gw-agent'), { gatewayUrl: gateway.agentUrl, agentKey: AK });
    const config = { ...base, gpu: { detect: 'auto' as const, deviceStyle: 'device-ids' as const, inventoryRefreshMs: 150, driverCapabilities: ['compute', 'utility'] } };
    const env = { PATH: fakePath, CYBERUN_FAKE_GPU_HOST: hostLink };
    agent = await Agent.start({ config, logger: silentLogger(), runtime: new FakeRuntime(), readInventory: () => readInventory({ detect: 'auto', timeoutMs: 15_000, env }) });
    await waitFor('the agent connected with 4 GPUs', async () => (await agentEntry())?.gpu_capacity === 4, 20_000, 100);
  });

  afterAll(async () => {
    await agent?.stop();
    await gateway?.close();
  });

  it('a GPU turning unhealthy reduces the capacity the gateway places by, without evicting what is placed, until it recovers', async () => {
    const id = agent.statusView().agentId;
    const placedOn = async (slug: string) => (await detail(slug))?.agents.find((a) => a.agent_id === id)?.assigned_replicas ?? 0;
    const first = await api.create({ service_slug: 'four-gpus', display_name: 'four', docker_image: 'cyberun-test/busybox-http:1', gpu_count: 4 });
    await api.deploy(first.body.id);
    await waitFor('four-gpus placed while all 4 GPUs are healthy', async () => (await placedOn('four-gpus')) === 1, 10_000, 100);

    useHost('rtxpro6000x4-gpu1-lost');
    await waitFor('capacity 3 in the agents list', async () => (await agentEntry())?.gpu_capacity === 3, 10_000, 100);
    const second = await api.create({ service_slug: 'four-more', display_name: 'four more', docker_image: 'cyberun-test/busybox-http:1', gpu_count: 4 });
    await api.deploy(second.body.id);
    const reason = await waitFor('four-more unplaced with a reason', async () => (await detail('four-more'))?.reason ?? undefined, 10_000, 100);
    expect(reason).toBe(`no connected agent has 4 healthy GPUs (gpu_count 4); unhealthy GPUs: ${id} 1 of 4`);
    expect(await placedOn('four-more')).toBe(0);
    // Already placed: stays (the agent queues its replica until 4 healthy GPUs are free).
    expect(await placedOn('four-gpus')).toBe(1);

    useHost('rtxpro6000x4');
    await waitFor('capacity back to 4', async () => (await agentEntry())?.gpu_capacity === 4, 10_000, 100);
    await waitFor('four-more placed once the GPU is healthy again', async () => (await placedOn('four-more')) === 1, 10_000, 100);
  });

});
