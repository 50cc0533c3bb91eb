import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetch } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';

import { startGateway, type Gateway, type GatewayOptions } from '../../src/gateway/gateway-server.js';
import type { HostInventory } from '../../src/host/types.js';
import { silentLogger } from '../../src/log.js';
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../../src/tunnel/protocol.js';
import { decodeResponseFrame } from '../../src/tunnel/protocol-stream.js';
import { TunnelClient } from '../../src/tunnel/tunnel-client.js';
import type { TunnelState } from '../../src/tunnel/tunnel-state.js';
import { FakeAgentCore, statusReport } from '../helpers/fake-agent-core.js';
import { waitFor } from '../helpers/wait-for.js';
import { proxyEndpointFor } from '../helpers/proxy-endpoint.js';

const SK = 'sk-tunnel-test-kkkkkkkkkkkk';
const AK = 'ak-tunnel-test-kkkkkkkkkkkk';
const RECONNECT = { baseMs: 50, capMs: 400 };

const h100: HostInventory = {
  gpus: [
    { id: '0', index: 0, uuid: 'GPU-0', vendor: 'NVIDIA', model: 'NVIDIA H100 80GB HBM3', vramTotalMb: 81559, vramFreeMb: 80000, busId: undefined, driverVersion: '550' },
  ],
  cpu: { model: 'x', cores: 8 },
  memoryBytes: 1,
  platformArch: 'linux/amd64',
  hardwareLabels: ['gpu', 'gpu-h100'],
  gpuSource: 'nvidia-smi',
};

const spec = (slug: string, over: Record<string, unknown> = {}) => ({ service_slug: slug, display_name: slug, docker_image: 'busybox:1', ...over });

describe('tunnel: TunnelClient ↔ local gateway', () => {
  let dataDir: string;
  let gateway: Gateway;
  const clients: TunnelClient[] = [];
  const sockets: WebSocket[] = [];

  const start = (port = 0, over: Partial<GatewayOptions> = {}): Promise<Gateway> =>
    startGateway({ port, dataDir, apiKeys: [SK], agentKeys: [AK], logger: silentLogger(), heartbeatIntervalMs: 200, pingIntervalMs: 500, ...over });

  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${gateway.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${SK}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  const runtime = async (slug: string) => (await api('GET', `/r/containers/${slug}`)).body;

  const agent = (agentId: string, opts: { labels?: string[]; key?: string; inventory?: HostInventory } = {}) => {
    const core = new FakeAgentCore();
    const states: TunnelState[] = [];
    const client = new TunnelClient({
      url: gateway.agentUrl,
      agentKey: opts.key ?? AK,
      agentId,
      agentVersion: '0.1.0-test',
      labels: () => opts.labels ?? [],
      inventory: () => opts.inventory,
      core,
      streams: proxyEndpointFor(core),
      logger: silentLogger(),
      reconnect: RECONNECT,
      pingIntervalMs: 500,
      snapshotIntervalMs: 300,
    });
    client.onState((s) => states.push(s));
    clients.push(client);
    client.start();
    return { core, client, states };
  };

  const deployNew = async (slug: string, over: Record<string, unknown> = {}): Promise<string> => {
    const created = await api('POST', '/containers', spec(slug, over));
    expect(created.status).toBe(200);
    const id = String(created.body.id);
    expect((await api('POST', `/containers/${id}/deploy`)).body).toEqual({ is_success: true });
    return id;
  };

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cyberun-tunnel-'));
    gateway = await start();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    for (const s of sockets.splice(0)) s.terminate();
    await gateway.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('hello → welcome → services.sync, status makes it running, undeploy stops it', async () => {
    const { core, client } = agent('host-a', { labels: ['gpu', 'gpu-h100'], inventory: h100 });
    await waitFor('connected', () => client.currentState().kind === 'connected');
    await waitFor('initial empty sync', () => core.lastApplied()?.services.length === 0);
    expect(core.lastApplied()?.source).toBe('gateway');

    const agents = await api('GET', '/agents');
    expect(agents.body.agent_list).toMatchObject([
      {
        agent_id: 'host-a',
        agent_status: 'idle',
        agent_labels: ['gpu', 'gpu-h100'],
        agent_version: '0.1.0-test',
        platform_arch: 'linux/amd64',
        gpu_capacity: 1,
        // The hello's MiB and vendor name, in Cyberun's bytes and device type.
        system_stats: { gpu_devices: [{ device_name: 'NVIDIA H100 80GB HBM3', device_type: 'cuda', vram_total: 81559 * 1048576, vram_free: 80000 * 1048576 }] },
      },
    ]);

    const id = await deployNew('llm', { gpu_count: 1, replica_count: 1 });
    const sync = await waitFor('sync with the service', () => core.lastApplied()?.services.find((s) => s.id === id));
    expect(sync.definition).toMatchObject({ service_slug: 'llm', gpu_count: 1, exposed_port: 8080 });
    const revisions = core.applied.map((a) => a.revision);
    expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
    expect((await runtime('llm')).service_status).toBe('deploying');

    core.emit(statusReport(id, 'llm'));
    await waitFor('running', async () => (await runtime('llm')).service_status === 'running');
    const detail = (await runtime('llm')).status_detail as { agents: { agent_id: string; state: string; replicas: { phase: string }[] }[] };
    expect(detail.agents).toMatchObject([{ agent_id: 'host-a', state: 'running', replicas: [{ phase: 'ready' }] }]);
    await waitFor('busy agent', async () => ((await api('GET', '/agents')).body.agent_list as { agent_status: string }[])[0]?.agent_status === 'busy');

    await api('POST', `/containers/${id}/undeploy`);
    await waitFor('sync without it', () => core.lastApplied()?.services.length === 0);
    expect((await runtime('llm')).service_status).toBe('stopping');
    core.emit(statusReport(id, 'llm', { state: 'stopped', readyReplicas: 0, replicas: [] }));
    await waitFor('stopped', async () => (await runtime('llm')).service_status === 'stopped');
  });

  it('reconnects to a restarted gateway and resyncs a definition changed while it was down', async () => {
    const { core, client, states } = agent('host-a');
    const id = await deployNew('web');
    await waitFor('first sync', () => core.lastApplied()?.services.some((s) => s.id === id));
    const port = gateway.port;
    await gateway.close();
    await waitFor('disconnected', () => client.currentState().kind === 'disconnected');

    // While the tunnel is down, another gateway process on the same data dir changes the definitions.
    gateway = await start();
    await api('POST', `/containers/${id}/undeploy`);
    expect((await api('PUT', `/containers/${id}`, { display_name: 'Web v2', replica_count: 2 })).status).toBe(200);
    await api('POST', `/containers/${id}/deploy`);
    const added = await deployNew('web-extra');
    await gateway.close();

    core.emit(statusReport(id, 'web', { state: 'deploying', readyReplicas: 1, reason: 'buffered while offline' }));
    gateway = await start(port);
    const reconnectedAt = Date.now();
    await waitFor('reconnected', () => client.currentState().kind === 'connected', 3000);
    expect(Date.now() - reconnectedAt).toBeLessThan(RECONNECT.capMs + 1500);
    const sync = await waitFor('resync', () => {
      const last = core.lastApplied();
      return last !== undefined && last.services.length === 2 ? last : undefined;
    });
    expect(sync.services.find((s) => s.id === id)?.definition).toMatchObject({ display_name: 'Web v2', replica_count: 2 });
    expect(sync.services.some((s) => s.id === added)).toBe(true);
    expect(states.some((s) => s.kind === 'disconnected' && /connection refused|closed/.test(s.reason))).toBe(true);
    // The status buffered while offline reached the new gateway.
    await waitFor('buffered status delivered', async () => {
      const agents = ((await runtime('web')).status_detail as { agents: { reason: string | null }[] }).agents;
      return agents[0]?.reason === 'buffered while offline';
    });
  });

  it("holds a dropped agent's services for the disconnect grace: back in time, nothing moves; gone, they move", async () => {
    await gateway.close();
    gateway = await start(0, { disconnectGraceMs: 1_500 });
    const a = agent('host-a');
    await waitFor('host-a connected', () => a.client.currentState().kind === 'connected');
    const id = await deployNew('held');
    await waitFor('host-a runs it', () => a.core.lastApplied()?.services.some((s) => s.id === id));
    a.core.emit(statusReport(id, 'held'));
    await waitFor('running', async () => (await runtime('held')).service_status === 'running');
    const b = agent('host-b');
    await waitFor('host-b synced', () => b.core.lastApplied()?.services.length === 0);

    await a.client.close();
    const held = await waitFor('held for host-a', async () => {
      const r = await runtime('held');
      return /^agent host-a disconnected at \S+Z; its replicas go to other agents at \S+Z unless it reconnects$/.test(String((r.status_detail as { reason: unknown }).reason)) ? r : undefined;
    });
    expect(held.service_status).toBe('deploying');
    const proxied = await fetch(`${gateway.url}/api/v1/r/containers/held/v1/models`, { headers: { authorization: `Bearer ${SK}` } });
    expect(proxied.status).toBe(503);
    expect(proxied.headers.get('retry-after')).toBe('5');
    expect(await proxied.text()).toContain('agent host-a disconnected');
    expect(b.core.lastApplied()?.services).toEqual([]);

    // Back within the grace: the same agent gets the same services, and nothing ever moves.
    const back = agent('host-a');
    await waitFor('host-a back with it', () => back.core.lastApplied()?.services.some((s) => s.id === id));
    await new Promise((r) => setTimeout(r, 2_000));
    expect(b.core.applied.every((sync) => sync.services.length === 0)).toBe(true);

    // Gone for good: once the grace has passed, host-b takes it.
    await back.client.close();
    await waitFor('host-b takes it after the grace', () => b.core.lastApplied()?.services.some((s) => s.id === id), 5_000);
  });

  it('answers a malformed frame with an error frame and leaves other agents alone', async () => {
    const good = agent('host-good');
    await waitFor('good agent connected', () => good.client.currentState().kind === 'connected');
    const goodStates = good.states.length;

    const raw = new WebSocket(gateway.agentUrl, { headers: { authorization: `Bearer ${AK}` } });
    sockets.push(raw);
    const frames: Record<string, unknown>[] = [];
    raw.on('message', (d) => frames.push(JSON.parse(String(d)) as Record<string, unknown>));
    await new Promise((r) => raw.once('open', r));
    raw.send(JSON.stringify({ type: 'heartbeat', running_count: 0, gpu_capacity: 0, gpu_memory_free: null }));
    await waitFor('error for a frame before hello', () => frames.find((f) => f.code === 'unexpected_frame'));
    raw.send(JSON.stringify({ type: 'hello', agent_id: 'raw', agent_version: '1', protocol_version: PROTOCOL_VERSION, labels: [], platform_arch: 'linux/amd64', gpu_devices: [], service_ids: [] }));
    await waitFor('welcome', () => frames.find((f) => f.type === 'welcome'));
    raw.send('this is not json');
    raw.send(JSON.stringify({ type: 'heartbeat', running_count: 'many', gpu_capacity: 0, gpu_memory_free: null }));
    raw.send(JSON.stringify({ type: 'teleport' }));
    raw.send(Buffer.from([0, 0]));
    const errors = await waitFor('four error frames', () => {
      const e = frames.filter((f) => f.type === 'error').slice(1);
      return e.length >= 4 ? e : undefined;
    });
    expect(errors.map((e) => e.code)).toEqual(['invalid_json', 'invalid_frame', 'unknown_type', 'invalid_frame']);
    expect(errors[1]?.message).toMatch(/heartbeat: running_count/);
    expect(errors[1]?.in_reply_to).toBe('heartbeat');

    expect(raw.readyState).toBe(WebSocket.OPEN);
    expect(good.client.currentState().kind).toBe('connected');
    expect(good.states.length).toBe(goodStates);
    const listed = ((await api('GET', '/agents')).body.agent_list as { agent_id: string }[]).map((a) => a.agent_id);
    expect(listed).toEqual(['host-good', 'raw']);
  });

  it('refuses a hello of another protocol version with an error frame and close 4002', async () => {
    const raw = new WebSocket(gateway.agentUrl, { headers: { authorization: `Bearer ${AK}` } });
    sockets.push(raw);
    const frames: Record<string, unknown>[] = [];
    raw.on('message', (d) => frames.push(JSON.parse(String(d)) as Record<string, unknown>));
    const closed = new Promise<number>((r) => raw.once('close', (code) => r(code)));
    await new Promise((r) => raw.once('open', r));
    raw.send(JSON.stringify({ type: 'hello', agent_id: 'old', agent_version: '0', protocol_version: PROTOCOL_VERSION + 1, labels: [], platform_arch: 'linux/amd64', gpu_devices: [], service_ids: [] }));
    expect(await closed).toBe(4002);
    expect(frames).toMatchObject([{ type: 'error', code: 'unsupported_version', in_reply_to: 'hello' }]);
  });

  it('refuses a wrong agent key with a clear reason and keeps retrying', async () => {
    const bad = agent('host-bad', { key: 'ak-wrong-kkkkkkkkkkkkkkkkkk' });
    const good = agent('host-ok');
    await waitFor('two refusals', () => bad.states.filter((s) => s.kind === 'disconnected').length >= 2);
    const refused = bad.states.find((s) => s.kind === 'disconnected');
    expect(refused?.kind === 'disconnected' && refused.reason).toMatch(/refused the agent key \(HTTP 401: agent key rejected.*\): check the ak- key/);
    await waitFor('good agent connected', () => good.client.currentState().kind === 'connected');
    const listed = ((await api('GET', '/agents')).body.agent_list as { agent_id: string }[]).map((a) => a.agent_id);
    expect(listed).toEqual(['host-ok']);
  });

  it('shows why the gateway refused an agent id its key is not issued for, and keeps retrying', async () => {
    await gateway.close();
    const other = 'ak-issued-for-other-kkkkkkkkkkk';
    gateway = await start(0, { agentKeys: [AK, { key: other, agentId: 'someone-else' }] });
    const misused = agent('host-misused', { key: other });
    await waitFor('two refusals', () => misused.states.filter((s) => s.kind === 'disconnected').length >= 2);
    const refused = misused.states.find((s) => s.kind === 'disconnected');
    expect(refused?.kind === 'disconnected' && refused.reason).toMatch(/^gateway refused the connection \(agent_id_refused\): this connection's agent key is issued for agent_id "someone-else", not "host-misused"/);
    expect((await api('GET', '/agents')).body.agent_list).toEqual([]);
  });

  it('places a service with required_labels only on the matching agent, and explains when none matches', async () => {
    const cpu = agent('host-cpu', { labels: ['cpu'] });
    const gpu = agent('host-gpu', { labels: ['gpu', 'gpu-h100'], inventory: h100 });
    await waitFor('both connected', () => cpu.client.currentState().kind === 'connected' && gpu.client.currentState().kind === 'connected');

    const id = await deployNew('h100-only', { required_labels: ['gpu-h100'], gpu_count: 1 });
    await waitFor('sync on the gpu agent', () => gpu.core.lastApplied()?.services.some((s) => s.id === id));
    await new Promise((r) => setTimeout(r, 100));
    expect(cpu.core.applied.every((a) => a.services.length === 0)).toBe(true);

    const spread = await deployNew('spread', { replica_count: 3 });
    const onCpu = await waitFor('cpu share', () => cpu.core.lastApplied()?.services.find((s) => s.id === spread));
    const onGpu = await waitFor('gpu share', () => gpu.core.lastApplied()?.services.find((s) => s.id === spread));
    expect(onCpu.definition.replica_count + onGpu.definition.replica_count).toBe(3);

    await deployNew('a100-only', { required_labels: ['gpu-a100'] });
    const view = await runtime('a100-only');
    expect(view.service_status).toBe('deploying');
    expect((view.status_detail as { reason: string }).reason).toBe('no connected agent has labels [gpu-a100]');
  });

  it('re-places by a new hello on the open tunnel (labels changed by a reload), without reconnecting', async () => {
    const labels = ['zone-a'];
    const a = agent('host-a', { labels });
    await waitFor('connected', () => a.client.currentState().kind === 'connected');
    const id = await deployNew('zoned', { required_labels: ['zone-b'] });
    await waitFor('waiting for a zone-b agent', async () => ((await runtime('zoned')).status_detail as { reason?: string } | undefined)?.reason === 'no connected agent has labels [zone-b]');

    labels.push('zone-b');
    a.client.refreshHello('test: labels changed');
    await waitFor('placed on host-a', () => a.core.lastApplied()?.services.some((s) => s.id === id));
    const listed = (await api('GET', '/agents')).body.agent_list as { agent_id: string; agent_labels: string[] }[];
    expect(listed).toMatchObject([{ agent_id: 'host-a', agent_labels: ['zone-a', 'zone-b'] }]);
    expect(a.states.filter((s) => s.kind === 'connected')).toHaveLength(1);
    expect(a.states.some((s) => s.kind === 'disconnected')).toBe(false);
  });
});

describe('tunnel: TunnelClient against a scripted gateway', () => {
  let server: WebSocketServer;
  let url: string;
  const received: Record<string, unknown>[] = [];
  let peer: WebSocket | undefined;
  let client: TunnelClient | undefined;

  beforeEach(async () => {
    received.length = 0;
    server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => server.once('listening', r));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/agent/connect`;
    server.on('connection', (ws, req) => {
      peer = ws;
      received.push({ type: '(connect)', authorization: req.headers.authorization });
      ws.on('message', (d, isBinary) => {
        if (!isBinary) return received.push(JSON.parse(String(d)) as Record<string, unknown>);
        // A response frame (version 3) is recorded as a stream.response with its body and end.
        const frame = decodeResponseFrame(d as Buffer, 1 << 20);
        if (typeof frame !== 'string') received.push({ type: 'stream.response', stream_id: frame.streamId, ...(frame.head as object), binary: true, body: frame.body.toString(), end: frame.end });
        return received.length;
      });
    });
  });
  afterEach(async () => {
    await client?.close();
    for (const ws of server.clients) ws.terminate();
    await new Promise((r) => server.close(r));
  });

  it('applies the valid specs of a sync, reports the invalid one by id and path, and answers streams', async () => {
    const core = new FakeAgentCore();
    client = new TunnelClient({ url, agentKey: AK, agentId: 'h', agentVersion: '1', labels: () => ['x'], inventory: () => undefined, core, streams: proxyEndpointFor(core), logger: silentLogger(), reconnect: RECONNECT });
    client.start();
    await waitFor('hello', () => received.find((f) => f.type === 'hello'));
    expect(received[0]?.authorization).toBe(`Bearer ${AK}`);
    peer?.send(JSON.stringify({ type: 'welcome', protocol_version: PROTOCOL_VERSION, heartbeat_interval_ms: 1000 }));
    peer?.send(
      JSON.stringify({
        type: 'services.sync',
        revision: 3,
        services: [
          { id: 'good', definition: spec('good-svc') },
          { id: 'bad', definition: spec('bad-svc', { replica_count: 99, exposed_port: 'x' }) },
        ],
      }),
    );
    const applied = await waitFor('applied', () => core.lastApplied());
    expect(applied.revision).toBe(3);
    expect(applied.services.map((s) => s.id)).toEqual(['good']);
    const error = await waitFor('error frame', () => received.find((f) => f.type === 'error'));
    expect(error).toMatchObject({ code: 'invalid_service', service_id: 'bad', in_reply_to: 'services.sync' });
    expect(error.message).toMatch(/service bad \(bad-svc\) has an invalid definition at .*exposed_port.*replica_count|replica_count.*exposed_port/);

    peer?.send(JSON.stringify({ type: 'services.sync', revision: -4, services: [] }));
    const invalid = await waitFor('invalid frame answered', () => received.find((f) => f.type === 'error' && f.code === 'invalid_frame'));
    expect(invalid.message).toMatch(/services\.sync: revision/);
    expect(core.applied).toHaveLength(1);

    // A stream for a held service without a ready replica is answered 503 (not a crash, not a reset).
    // Welcomed as version 3: head, body and end leave as one response frame.
    peer?.send(JSON.stringify({ type: 'stream.open', stream_id: 7, service_id: 'good', method: 'GET', path: '/', headers: {}, has_body: false }));
    const answer = await waitFor('response', () => received.find((f) => f.type === 'stream.response'));
    expect(answer).toMatchObject({ stream_id: 7, status: 503, binary: true, end: true });
    expect(JSON.parse(answer.body as string)).toMatchObject({ error_message: expect.stringMatching(/ready/) });
    expect(received.some((f) => f.type === 'stream.end')).toBe(false);
    expect(await waitFor('heartbeat', () => received.find((f) => f.type === 'heartbeat'))).toMatchObject({ running_count: 0, gpu_capacity: 0 });
  });

  it('speaks version 2 to a gateway that welcomes with 2: the response head is a text frame', async () => {
    const core = new FakeAgentCore();
    client = new TunnelClient({ url, agentKey: AK, agentId: 'h', agentVersion: '1', labels: () => [], inventory: () => undefined, core, streams: proxyEndpointFor(core), logger: silentLogger(), reconnect: RECONNECT });
    client.start();
    expect(await waitFor('hello', () => received.find((f) => f.type === 'hello'))).toMatchObject({ protocol_version: PROTOCOL_VERSION });
    peer?.send(JSON.stringify({ type: 'welcome', protocol_version: MIN_PROTOCOL_VERSION, heartbeat_interval_ms: 1000 }));
    peer?.send(JSON.stringify({ type: 'stream.open', stream_id: 3, service_id: 'nope', method: 'GET', path: '/', headers: {}, has_body: false }));
    expect(await waitFor('response', () => received.find((f) => f.type === 'stream.response'))).toMatchObject({ stream_id: 3, status: 404 });
    expect(received.find((f) => f.type === 'stream.response')?.binary).toBeUndefined();
    await waitFor('end', () => received.find((f) => f.type === 'stream.end' && f.stream_id === 3));
  });

  it('falls back to the oldest version it speaks when a gateway refuses its hello as unsupported', async () => {
    const core = new FakeAgentCore();
    client = new TunnelClient({ url, agentKey: AK, agentId: 'h', agentVersion: '1', labels: () => [], inventory: () => undefined, core, streams: proxyEndpointFor(core), logger: silentLogger(), reconnect: RECONNECT });
    client.start();
    await waitFor('hello', () => received.find((f) => f.type === 'hello'));
    // What a version-2 gateway answers a version-3 hello.
    peer?.send(JSON.stringify({ type: 'error', code: 'unsupported_version', message: `protocol_version ${PROTOCOL_VERSION} is not supported; this gateway speaks 2`, in_reply_to: 'hello' }));
    peer?.close(4002, 'unsupported protocol version');
    const hellos = await waitFor('second hello', () => {
      const h = received.filter((f) => f.type === 'hello');
      return h.length >= 2 ? h : undefined;
    });
    expect(hellos.map((h) => h.protocol_version)).toEqual([PROTOCOL_VERSION, MIN_PROTOCOL_VERSION]);
  });

  it('buffers only the latest status per service while offline and flushes it after welcome', async () => {
    const core = new FakeAgentCore();
    client = new TunnelClient({ url, agentKey: AK, agentId: 'h', agentVersion: '1', labels: () => [], inventory: () => undefined, core, streams: proxyEndpointFor(core), logger: silentLogger(), reconnect: RECONNECT });
    client.start();
    await waitFor('hello', () => received.find((f) => f.type === 'hello'));
    peer?.send(JSON.stringify({ type: 'welcome', protocol_version: PROTOCOL_VERSION, heartbeat_interval_ms: 1000 }));
    await waitFor('first snapshot', () => received.find((f) => f.type === 'status.snapshot'));
    peer?.terminate();
    await waitFor('second hello', () => received.filter((f) => f.type === 'hello').length === 2);
    received.length = 0;
    // Connected again but not welcomed yet: still offline for status purposes.
    for (let i = 0; i < 50; i++) core.emit(statusReport('a', 'a-svc', { readyReplicas: i % 2, reason: `update ${i}` }));
    core.emit(statusReport('b', 'b-svc'));
    await new Promise((r) => setTimeout(r, 50));
    expect(received.some((f) => f.type === 'service.status')).toBe(false);
    peer?.send(JSON.stringify({ type: 'welcome', protocol_version: PROTOCOL_VERSION, heartbeat_interval_ms: 1000 }));
    await waitFor('snapshot', () => received.find((f) => f.type === 'status.snapshot'));
    const statuses = received.filter((f) => f.type === 'service.status').map((f) => f.status as { serviceId: string; reason?: string });
    expect(statuses.map((s) => `${s.serviceId}:${s.reason ?? ''}`)).toEqual(['a:update 49', 'b:']);
  });

  it('terminates a connection whose pongs stop and reconnects', async () => {
    const core = new FakeAgentCore();
    client = new TunnelClient({ url, agentKey: AK, agentId: 'h', agentVersion: '1', labels: () => [], inventory: () => undefined, core, streams: proxyEndpointFor(core), logger: silentLogger(), reconnect: RECONNECT, pingIntervalMs: 100 });
    const states: TunnelState[] = [];
    client.onState((s) => states.push(s));
    client.start();
    await waitFor('hello', () => received.find((f) => f.type === 'hello'));
    // Stop answering pings: ws answers them automatically unless the socket is paused.
    peer?.pause();
    const lost = await waitFor('missed pong', () => states.find((s) => s.kind === 'disconnected'), 3000);
    expect(lost.kind === 'disconnected' && lost.reason).toMatch(/missed a pong/);
    await waitFor('second hello', () => received.filter((f) => f.type === 'hello').length >= 2, 3000);
  });
});
