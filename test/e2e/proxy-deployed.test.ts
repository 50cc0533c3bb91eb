import { randomBytes } from 'node:crypto';
import { fetch, request } from 'undici';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../src/gateway/gateway-server.js';
import { silentLogger } from '../../src/log.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import { startTestAgent, tempDir, tearDown, testConfig, type TestAgent } from '../helpers/agent-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { newTestRunId, requireDocker } from '../helpers/docker.js';
import { listByLabel } from '../helpers/engine.js';
import { ensureNodeTestImage } from '../helpers/node-image.js';
import { ensureTestImages } from '../helpers/test-images.js';
import { gatewayClient } from '../helpers/gateway-client.js';

const docker = await requireDocker('proxy e2e tests');
const SK = 'sk-proxy-e2e-kkkkkkkkkkkkkk';
const AK = 'ak-proxy-e2e-kkkkkkkkkkkkkk';
const auth = { authorization: `Bearer ${SK}` };

describe.skipIf(!docker)('proxy e2e: client → local gateway → ws tunnel → agent → containers', () => {
  const runId = newTestRunId('proxy');
  // Container names derive from slugs: unique ones keep parallel test files apart.
  const BUSY = `busy-${runId.slice(-6)}`;
  const NODE = `nodehttp-${runId.slice(-6)}`;
  let gateway: Gateway;
  let t: TestAgent;
  /** Container id → when the agent first reported it ready. */
  const readySince = new Map<string, number>();

  const api = (method: string, path: string, body?: unknown) => gatewayClient(gateway.url, SK).call(method, path, body);
  const running = (slug: string) => waitFor(`${slug} running`, async () => (await api('GET', `/r/containers/${slug}`)).body['service_status'] === 'running', 60_000);
  const deploy = (definition: { service_slug: string } & Record<string, unknown>) => gatewayClient(gateway.url, SK).deployRunning(definition);

  beforeAll(async () => {
    await ensureTestImages();
    await ensureNodeTestImage();
    gateway = await startGateway({ port: 0, dataDir: await tempDir('proxy-gw'), apiKeys: [SK], agentKeys: [AK], logger: silentLogger(), heartbeatIntervalMs: 500 });
    t = await startTestAgent(testConfig(runId, await tempDir('proxy-agent'), { gatewayUrl: gateway.agentUrl, agentKey: AK }));
    t.agent.reconciler.onStatusChange((r) => {
      for (const rep of r.replicas) if (rep.phase === 'ready' && rep.containerId && !readySince.has(rep.containerId)) readySince.set(rep.containerId, Date.now());
    });
    await deploy({ service_slug: BUSY, display_name: 'busybox', docker_image: 'cyberun-test/busybox-http:1', replica_count: 2 });
    await deploy({ service_slug: NODE, display_name: 'node', docker_image: 'cyberun-test/node-http:1' });
  }, 120_000);

  afterAll(() => tearDown(t, gateway));

  it('GET and POST through the transparent proxy reach a replica; query, status, headers and body unchanged', async () => {
    const get = await request(`${gateway.url}/api/v1/r/containers/${BUSY}/cgi-bin/echo?a=1&b=two%20words`, { headers: auth });
    expect(get.statusCode).toBe(200);
    expect(get.headers['content-type']).toBe('text/plain');
    expect(await get.body.text()).toBe('method=GET\nquery=a=1&b=two%20words\nbody=\n');

    const post = await request(`${gateway.url}/api/v1/r/containers/${BUSY}/cgi-bin/echo?x=y`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'payload-123' });
    expect(post.statusCode).toBe(200);
    expect(await post.body.text()).toBe('method=POST\nquery=x=y\nbody=payload-123\n');

    const node = await request(`${gateway.url}/api/v1/r/containers/${NODE}/echo/p?q=%C3%A9`, { method: 'PUT', headers: { ...auth, 'x-trace': 't1' }, body: '{"a":1}' });
    expect(node.statusCode).toBe(200);
    expect(node.headers['x-echo']).toBe('1');
    const echoed = (await node.body.json()) as { method: string; url: string; body: string; headers: Record<string, string> };
    expect(echoed).toMatchObject({ method: 'PUT', url: '/echo/p?q=%C3%A9', body: '{"a":1}' });
    expect(echoed.headers['x-trace']).toBe('t1');
    expect(echoed.headers['authorization']).toBeUndefined();
  });

  it('GET and POST through invoke reach a replica and come back as status, headers and base64 body', async () => {
    const invoke = async (body: unknown) => {
      const res = await fetch(`${gateway.url}/api/v1/r/invoke/${BUSY}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status).toBe(200);
      const out = (await res.json()) as { status_code: number; headers: Record<string, string>; body_base64: string };
      return { ...out, text: Buffer.from(out.body_base64, 'base64').toString('utf8') };
    };
    const get = await invoke({ method: 'GET', path: '/cgi-bin/echo?k=v&z=1' });
    expect(get).toMatchObject({ status_code: 200, text: 'method=GET\nquery=k=v&z=1\nbody=\n' });
    expect(get.headers['content-type']).toBe('text/plain');
    const post = await invoke({ method: 'POST', path: '/cgi-bin/echo', body_base64: Buffer.from('data=1').toString('base64'), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(post).toMatchObject({ status_code: 200, text: 'method=POST\nquery=\nbody=data=1\n' });
    const missing = await invoke({ method: 'GET', path: '/no-such-file' });
    expect(missing.status_code).toBe(404);
  });

  it('streams SSE event by event: each event arrives before the next one is even sent', async () => {
    const res = await request(`${gateway.url}/api/v1/r/containers/${NODE}/sse?n=10&ms=100`, { headers: auth });
    expect(res.headers['content-type']).toBe('text/event-stream');
    const events: Array<{ n: number; sent: number; arrived: number }> = [];
    let buffer = '';
    for await (const chunk of res.body) {
      buffer += String(chunk);
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = /data: (.*)/.exec(block)?.[1];
        if (data) events.push({ ...(JSON.parse(data) as { n: number; sent: number }), arrived: Date.now() });
      }
    }
    expect(events.map((e) => e.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Container and test share the host clock. Batching would deliver event i only after event
    // i+1 was sent; here every event is in the client's hands before its successor leaves the server.
    for (let i = 0; i + 1 < events.length; i++) expect(events[i]!.arrived).toBeLessThanOrEqual(events[i + 1]!.sent);
  });

  it('passes a WebSocket through to the container: its greeting, echoes of text and 256 KiB binary, the close code', async () => {
    const [container] = await listByLabel(`${Labels.SERVICE_SLUG}=${NODE}`);
    const ws = new WebSocket(`${gateway.url.replace('http', 'ws')}/api/v1/r/containers/${NODE}/ws`, { headers: auth });
    const messages: Array<{ data: Buffer; isBinary: boolean }> = [];
    ws.on('message', (data, isBinary) => messages.push({ data: data as Buffer, isBinary }));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    await waitFor('the greeting', () => messages.length >= 1, 10_000);
    expect(container?.startsWith(messages[0]!.data.toString())).toBe(true);
    const blob = randomBytes(256 * 1024);
    ws.send('ping through the tunnel');
    ws.send(blob);
    await waitFor('two echoes', () => messages.length >= 3, 10_000);
    expect(messages[1]).toEqual({ data: Buffer.from('ping through the tunnel'), isBinary: false });
    expect(messages[2]!.isBinary).toBe(true);
    expect(messages[2]!.data.equals(blob)).toBe(true);
    const code = new Promise((resolve) => ws.once('close', resolve));
    ws.close(4100);
    expect(await code).toBe(4100);
  });

  it('never routes a request to a replica that is not ready during a rolling update', async () => {
    const svc = (await api('GET', `/r/containers/${BUSY}`)).body;
    const id = String(svc['id']);
    const before = new Set(t.status(id)?.replicas.map((r) => r.containerId));
    const results: Array<{ status: number; host: string; at: number }> = [];
    let stop = false;
    const load = (async () => {
      for (let i = 0; i < 5_000 && !stop; i++) {
        const res = await request(`${gateway.url}/api/v1/r/containers/${BUSY}/cgi-bin/hostname`, { headers: auth });
        results.push({ status: res.statusCode, host: (await res.body.text()).trim(), at: Date.now() });
      }
    })();
    await waitFor('load flowing before the update', () => results.length >= 5, 10_000);
    expect((await api('PUT', `/containers/${id}`, { env_config: [{ env_name: 'ROLL', env_value: runId }] })).status).toBe(200);
    await api('POST', `/containers/${id}/deploy`);
    await waitFor('rolled to new containers', () => {
      const s = t.status(id);
      return s?.state === 'running' && s.readyReplicas === 2 && s.replicas.every((r) => r.containerId && !before.has(r.containerId));
    }, 90_000);
    await running(BUSY);
    const afterRoll = results.length;
    await waitFor('load flowing after the update', () => results.length >= afterRoll + 5, 10_000);
    stop = true;
    await load;
    expect(results.length).toBeGreaterThan(10);
    const bad = results.filter((r) => r.status !== 200);
    expect(bad).toEqual([]);
    const hosts = new Set(results.map((r) => r.host));
    // Both generations answered, and every answer came from a container already reported ready.
    expect([...hosts].some((h) => [...before].some((c) => c?.startsWith(h)))).toBe(true);
    expect([...hosts].some((h) => ![...before].some((c) => c?.startsWith(h)))).toBe(true);
    for (const r of results) {
      const container = [...readySince.keys()].find((c) => c.startsWith(r.host));
      expect(container, `response from ${r.host}`).toBeDefined();
      expect(readySince.get(container!)!).toBeLessThanOrEqual(r.at);
    }
  }, 120_000);
});
