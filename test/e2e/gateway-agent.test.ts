import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startGateway, type Gateway } from '../../src/gateway/gateway-server.js';
import { createLogger } from '../../src/log.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import { newTestRunId, removeTestNetwork, requireDocker } from '../helpers/docker.js';
import { ensureTestImages } from '../helpers/test-images.js';
import type { HostInventory } from '../../src/host/types.js';
import { noGpuInventory, startTestAgent, tempDir, testConfig, type TestAgent } from '../helpers/agent-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { inspect, listByLabel, sweepByLabel } from '../helpers/engine.js';
import { gatewayClient, type RuntimeRecord } from '../helpers/gateway-client.js';
import { rows } from '../fixtures/spec-cases.js';

const docker = await requireDocker('gateway + agent e2e tests');
const API_KEY = 'sk-e2e-test-key-0123456789-k';
const AGENT_KEY = 'ak-e2e-test-key-0123456789-k';

describe.skipIf(!docker)('local gateway + agent + real Docker, end to end', () => {
  const runId = newTestRunId('e2e');
  const logger = createLogger({ level: (process.env['TEST_LOG_LEVEL'] as 'warn' | undefined) ?? 'silent' });
  let dataDir: string;
  let gateway: Gateway;
  let port: number;
  let api: ReturnType<typeof gatewayClient>;
  const agents: TestAgent[] = [];

  const openGateway = async (p = 0) => {
    gateway = await startGateway({ host: '127.0.0.1', port: p, dataDir, apiKeys: [API_KEY], agentKeys: [AGENT_KEY], logger });
    port = gateway.port;
    api = gatewayClient(gateway.url, API_KEY);
  };
  const startAgent = async (name: string, labels: string[]) => {
    const config = testConfig(`${runId}-${name}`, await tempDir(`e2e-${name}`), {
      gatewayUrl: gateway.agentUrl,
      agentKey: AGENT_KEY,
      agentLabels: labels,
    });
    const a = await startTestAgent(config, undefined, logger);
    agents.push(a);
    return a;
  };
  const status = (slug: string, want: string, timeoutMs = 60_000) =>
    waitFor(`${slug} ${want}`, async () => {
      const r = await api.runtime(slug);
      return r.body.service_status === want ? r.body : undefined;
    }, timeoutMs, 200);
  const containersOf = (a: TestAgent, serviceId: string) => listByLabel(`${Labels.SERVICE_ID}=${serviceId}`).then(async (ids) => {
    const infos = await Promise.all(ids.map((id) => inspect(id)));
    return infos.filter((i) => i?.Config.Labels[Labels.AGENT_ID] === a.config.agentId);
  });

  beforeAll(async () => {
    await ensureTestImages();
    dataDir = await tempDir('e2e-gateway');
    await openGateway();
  });

  afterAll(async () => {
    for (const a of agents) await a.stop();
    await gateway?.close();
    for (const a of agents) {
      await sweepByLabel(`${Labels.AGENT_ID}=${a.config.agentId}`);
      await removeTestNetwork(a.config.docker.network);
    }
  });

  it("deploys Cyberun's create example on a real agent, runs replica_count containers, undeploys to stopped", async () => {
    const gpuAgent = await startAgent('a', ['zone-a']);
    const created = await api.create({
      service_slug: 'my-llm-service',
      display_name: 'My LLM Service',
      service_desc: 'An OpenAI-compatible model server',
      docker_image: 'cyberun-test/busybox-http:1',
      exposed_port: 8000,
      health_path: '/health',
      env_config: [{ env_name: 'PORT', env_value: '8000' }, { env_name: 'MODEL_NAME', env_value: 'tiny' }],
      replica_count: 2,
      gpu_count: 0,
    });
    expect(created.status).toBe(200);
    expect(created.body.id).toMatch(/^[0-9a-f-]{36}$/);
    const id = created.body.id;
    expect((await api.runtime('my-llm-service')).body.service_status).toBe('created');
    expect((await api.deploy(id)).status).toBe(200);
    const running = await status('my-llm-service', 'running');
    expect(running.status_detail?.ready_replicas).toBe(2);
    const containers = await containersOf(gpuAgent, id);
    expect(containers).toHaveLength(2);
    expect(containers.every((c) => c?.State.Running && c.Config.Env.includes('MODEL_NAME=tiny'))).toBe(true);

    expect((await api.undeploy(id)).status).toBe(200);
    await status('my-llm-service', 'stopped');
    expect(await containersOf(gpuAgent, id)).toHaveLength(0);
  });

  it('rejects every invalid definition of the contract table over HTTP, naming the field, storing nothing', async () => {
    const before = (await api.list()).body.page_meta.total_count;
    const invalid = rows.filter((r) => r.paths.length > 0);
    expect(invalid.length).toBeGreaterThanOrEqual(60);
    for (const row of invalid) {
      const res = await api.create(row.input);
      expect(res.status, row.name).toBeGreaterThanOrEqual(400);
      expect(res.status, row.name).toBeLessThan(500);
      const message = String(res.body.error_message);
      for (const p of row.paths) {
        const field = p === '(root)' ? 'service definition' : p.replace(/\[\d+\].*$/, '');
        expect(message, `${row.name}: ${message}`).toContain(field);
      }
    }
    expect((await api.list()).body.page_meta.total_count).toBe(before);
  });

  it('survives a gateway restart: the agent reconnects and resyncs, no container restarts, a change made meanwhile is applied', async () => {
    const a = agents[0]!;
    const created = await api.create({ service_slug: 'steady', display_name: 'Steady', docker_image: 'cyberun-test/busybox-http:1', replica_count: 2, env_config: [{ env_name: 'V', env_value: '1' }] });
    const id = created.body.id;
    await api.deploy(id);
    await status('steady', 'running');
    const before = await containersOf(a, id);
    const starts = new Map(before.map((c) => [c!.Id, c!.State.StartedAt]));

    await gateway.close();
    await waitFor('agent sees the tunnel down', () => a.agent.tunnel?.currentState().kind === 'disconnected', 10_000);
    // Meanwhile, an operator changes another service through a second gateway on the same data dir.
    const side = await startGateway({ host: '127.0.0.1', port: 0, dataDir, apiKeys: [API_KEY], agentKeys: [AGENT_KEY], logger });
    const sideApi = gatewayClient(side.url, API_KEY);
    const later = await sideApi.create({ service_slug: 'added-meanwhile', display_name: 'Added', docker_image: 'cyberun-test/busybox-http:1' });
    await sideApi.deploy(later.body.id);
    await side.close();

    // Containers keep running while the tunnel is down.
    for (const c of await containersOf(a, id)) expect(starts.get(c!.Id)).toBe(c!.State.StartedAt);
    await openGateway(port);
    await waitFor('agent reconnected', () => a.agent.tunnel?.currentState().kind === 'connected', 30_000);
    await status('steady', 'running');
    await status('added-meanwhile', 'running');
    const after = await containersOf(a, id);
    expect(after.map((c) => c!.Id).sort()).toEqual([...starts.keys()].sort());
    for (const c of after) expect(c!.State.StartedAt).toBe(starts.get(c!.Id));
  });

  it('places a service with required_labels only on the matching agent; a service nobody matches waits with a reason', async () => {
    const a = agents[0]!;
    const b = await startAgent('b', ['zone-b', 'fast-disk']);
    await waitFor('two agents connected', async () => {
      const r = await api.call<{ agent_list: unknown[] }>('GET', '/agents');
      return r.body.agent_list.length === 2;
    });
    const created = await api.create({ service_slug: 'needs-b', display_name: 'B only', docker_image: 'cyberun-test/busybox-http:1', required_labels: ['fast-disk'], replica_count: 2 });
    await api.deploy(created.body.id);
    await status('needs-b', 'running');
    expect(await containersOf(b, created.body.id)).toHaveLength(2);
    expect(await containersOf(a, created.body.id)).toHaveLength(0);

    const nobody = await api.create({ service_slug: 'needs-h100', display_name: 'H100', docker_image: 'cyberun-test/busybox-http:1', required_labels: ['gpu-h100'] });
    await api.deploy(nobody.body.id);
    const waiting: RuntimeRecord = await waitFor('reason visible', async () => {
      const r = (await api.runtime('needs-h100')).body;
      return r.status_detail?.reason ? r : undefined;
    });
    expect(waiting.service_status).toBe('deploying');
    expect(waiting.status_detail?.reason).toContain('gpu-h100');
  });

  it('a reload that adds a label gets the waiting service placed on that agent at once, over the same tunnel', async () => {
    const b = agents[1]!;
    const tunnelBefore = b.agent.tunnel?.currentState();
    expect(tunnelBefore?.kind).toBe('connected');
    const change = b.agent.reload({ ...b.config, agentLabels: [...b.config.agentLabels, 'gpu-h100'] });
    expect(change.live).toContain('agent_labels');
    const running = await status('needs-h100', 'running');
    expect(await containersOf(b, running.id)).toHaveLength(1);
    const listed = (await api.call<{ agent_list: { agent_id: string; agent_labels: string[] }[] }>('GET', '/agents')).body.agent_list;
    expect(listed.find((x) => x.agent_id === b.config.agentId)?.agent_labels).toContain('gpu-h100');
    // A new hello on the open connection, not a reconnect.
    expect(b.agent.tunnel?.currentState()).toEqual(tunnelBefore);
  });

  it('a GPU that appears in the inventory is told to the gateway at once, which places a GPU service there', async () => {
    let inventory: HostInventory = noGpuInventory;
    const config = testConfig(`${runId}-c`, await tempDir('e2e-c'), { gatewayUrl: gateway.agentUrl, agentKey: AGENT_KEY, agentLabels: ['zone-c'] });
    const c = await startTestAgent({ ...config, gpu: { ...config.gpu, inventoryRefreshMs: 200 } }, () => inventory, logger);
    agents.push(c);
    const created = await api.create({ service_slug: 'needs-gpu-c', display_name: 'GPU in zone c', docker_image: 'cyberun-test/busybox-http:1', required_labels: ['zone-c'], gpu_count: 1 });
    await api.deploy(created.body.id);
    await waitFor('waiting for a GPU', async () => (await api.runtime('needs-gpu-c')).body.status_detail?.reason?.includes('has 1 GPU'));

    const tunnelBefore = c.agent.tunnel?.currentState();
    inventory = { ...noGpuInventory, gpus: [{ id: '0', index: 0, uuid: 'GPU-e2e-0', vendor: 'NVIDIA', model: 'NVIDIA H100 80GB HBM3', vramTotalMb: 81559, vramFreeMb: 81000, busId: undefined, driverVersion: '550' }], hardwareLabels: ['gpu', 'gpu-h100'], gpuSource: 'nvidia-smi' };
    const placed = await waitFor('placed on agent c', async () => {
      const detail = (await api.runtime('needs-gpu-c')).body.status_detail;
      return detail?.agents.find((x) => x.agent_id === c.config.agentId && x.assigned_replicas === 1);
    }, 10_000);
    expect(placed).toBeDefined();
    expect(c.agent.tunnel?.currentState()).toEqual(tunnelBefore);
  });

  it('refuses malformed frames and a wrong agent key clearly, leaving the other agents and their services alone', async () => {
    const b = agents[1]!;
    const id = (await api.runtime('needs-b')).body.id;
    const before = await containersOf(b, id);

    const wrong = new WebSocket(gateway.agentUrl, { headers: { authorization: 'Bearer ak-wrong' } });
    const refused = await new Promise<number>((resolve) => {
      wrong.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      wrong.on('open', () => resolve(101));
      wrong.on('error', () => undefined);
    });
    expect(refused).toBe(401);

    const raw = new WebSocket(gateway.agentUrl, { headers: { authorization: `Bearer ${AGENT_KEY}` } });
    await new Promise((resolve, reject) => {
      raw.on('open', resolve);
      raw.on('error', reject);
    });
    const errors: string[] = [];
    raw.on('message', (data) => errors.push(String(data)));
    raw.send('{not json');
    raw.send(JSON.stringify({ type: 'hello', agent_id: 42 }));
    await waitFor('two protocol errors', () => errors.filter((e) => e.includes('"error"')).length >= 2, 5_000);
    expect(errors.join('\n')).toMatch(/agent_id/);
    raw.close();

    await new Promise((r) => setTimeout(r, 1_000));
    expect((await api.runtime('needs-b')).body.service_status).toBe('running');
    const after = await containersOf(b, id);
    expect(after.map((c) => `${c!.Id}@${c!.State.StartedAt}`).sort()).toEqual(before.map((c) => `${c!.Id}@${c!.State.StartedAt}`).sort());
    expect(b.agent.tunnel?.currentState().kind).toBe('connected');
  });
});
