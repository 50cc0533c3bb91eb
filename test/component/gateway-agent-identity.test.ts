import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE_AGENT_ID_IN_USE, CLOSE_AGENT_ID_REFUSED } from '../../src/tunnel/protocol.js';
import { statusReport } from '../helpers/fake-agent-core.js';
import { waitFor } from '../helpers/wait-for.js';
import { RIG_AGENT_ID, SK, startProxyRig, startUpstream, type ProxyRig, type Upstream } from '../helpers/proxy-harness.js';
import { connectRawAgent, type RawAgent } from '../helpers/raw-agent.js';

const auth = { authorization: `Bearer ${SK}` };
/** Issued for evil-host, and used by it to claim other agents' ids. */
const EVIL_KEY = 'ak-evil-host-000000000000000000';
const SHARED_KEY = 'ak-shared-key-00000000000000000';
const HALF_OPEN_KEY = 'ak-half-open-000000000000000000';
const EXT_KEY = 'ak-ext-host-0000000000000000000';
const CRED_ID = '6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b';
/** The gateway's default: how long a connected agent has to answer a ping before it is replaced. */
const REPLACE_BOUND_MS = 5_000;

interface AgentRow {
  agent_id: string;
  connected_at: string;
}

describe('agent identity: a key names one agent id; a live session is never evicted on a newcomer\'s word', () => {
  let rig: ProxyRig;
  let up: Upstream;
  const raws: RawAgent[] = [];
  const raw = async (key: string): Promise<RawAgent> => {
    const agent = await connectRawAgent(rig.gateway.agentUrl, key);
    raws.push(agent);
    return agent;
  };
  const agents = async (): Promise<AgentRow[]> => (await rig.api('GET', '/agents')).body['agent_list'] as AgentRow[];
  /** The real agent's session: its id and when it connected (a replaced session has a new time). */
  const realAgent = async (): Promise<AgentRow | undefined> => {
    const row = (await agents()).find((a) => a.agent_id === RIG_AGENT_ID);
    return row === undefined ? undefined : { agent_id: row.agent_id, connected_at: row.connected_at };
  };
  const proxied = async (): Promise<number> => {
    const res = await request(`${rig.gateway.url}/api/v1/r/containers/echo/echo/x`, { headers: auth });
    await res.body.dump();
    return res.statusCode;
  };

  beforeAll(async () => {
    up = await startUpstream();
    rig = await startProxyRig({}, {
      agentKeys: [{ key: EVIL_KEY, agentId: 'evil-host' }, SHARED_KEY, { key: HALF_OPEN_KEY, agentId: 'half-open-host' }, { key: EXT_KEY, agentId: 'ext-host' }],
    });
    await rig.deploy({ service_slug: 'echo', display_name: 'echo', docker_image: 'busybox:1' }, [{ serviceId: '', replicaIndex: 0, containerId: 'c0', host: '127.0.0.1', port: up.port }]);
  });

  // Hand-driven agents leave after each test, so placement sees only the real agent again.
  afterEach(async () => {
    for (const agent of raws.splice(0)) agent.ws.terminate();
    await waitFor('only the real agent connected', async () => (await agents()).every((a) => a.agent_id === RIG_AGENT_ID));
  });

  afterAll(async () => {
    await rig?.close();
    await up?.close();
  });

  it('refuses a hello for another agent\'s id (4004, with the reason), and the real agent\'s session and traffic are untouched', async () => {
    const before = await realAgent();
    expect(before).toBeDefined();
    const evil = await raw(EVIL_KEY);
    evil.hello(RIG_AGENT_ID);
    const error = await evil.next('error');
    expect(error).toMatchObject({ code: 'agent_id_refused', in_reply_to: 'hello' });
    expect(String(error['message'])).toContain(`issued for agent_id "evil-host", not "${RIG_AGENT_ID}"`);
    expect(await evil.closed).toEqual({ code: CLOSE_AGENT_ID_REFUSED, reason: 'agent key not issued for this agent_id' });
    // It learnt nothing: no welcome, no services.sync (no env values), no stream.open.
    expect(evil.frames.map((f) => f.type)).toEqual(['error']);
    expect(await realAgent()).toEqual(before);
    expect(rig.client.currentState().kind).toBe('connected');
    expect(await proxied()).toBe(201);
  });

  it('refuses a change of agent id on an open connection (4004)', async () => {
    const shared = await raw(SHARED_KEY);
    shared.hello('free-host');
    await shared.next('welcome');
    shared.hello(RIG_AGENT_ID);
    const error = await shared.next('error');
    expect(error).toMatchObject({ code: 'agent_id_refused' });
    expect(String(error['message'])).toMatch(/agent_id cannot change on an open connection \(was "free-host"\)/);
    expect((await shared.closed).code).toBe(CLOSE_AGENT_ID_REFUSED);
    expect((await agents()).map((a) => a.agent_id)).not.toContain('free-host');
    expect(await proxied()).toBe(201);
  });

  it('refuses a shared-key hello for a live agent\'s id once that agent answered the ping (4005); the live agent keeps its session', async () => {
    const before = await realAgent();
    const started = Date.now();
    const shared = await raw(SHARED_KEY);
    shared.hello(RIG_AGENT_ID);
    const error = await shared.next('error', undefined, REPLACE_BOUND_MS + 2_000);
    expect(error).toMatchObject({ code: 'agent_id_in_use' });
    expect((await shared.closed).code).toBe(CLOSE_AGENT_ID_IN_USE);
    // Decided by the live agent's pong, not by waiting out the bound.
    expect(Date.now() - started).toBeLessThan(REPLACE_BOUND_MS);
    expect(shared.frames.map((f) => f.type)).toEqual(['error']);
    expect(await realAgent()).toEqual(before);
    expect(await proxied()).toBe(201);
  });

  it('replaces a half-open session (no pong) within the bound, so a reconnecting agent recovers in seconds', async () => {
    const old = await raw(HALF_OPEN_KEY);
    old.hello('half-open-host');
    await old.next('services.sync');
    const first = (await agents()).find((a) => a.agent_id === 'half-open-host');
    expect(first).toBeDefined();
    // The old connection goes half-open: the gateway's ping is never read, so never answered.
    (old.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const started = Date.now();
    const fresh = await raw(HALF_OPEN_KEY);
    fresh.hello('half-open-host');
    await fresh.next('welcome', undefined, REPLACE_BOUND_MS + 3_000);
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(REPLACE_BOUND_MS - 100);
    expect(waited).toBeLessThan(REPLACE_BOUND_MS + 3_000);
    await fresh.next('services.sync');
    const now = await waitFor('the new session listed', async () => (await agents()).find((a) => a.agent_id === 'half-open-host' && a.connected_at !== first?.connected_at));
    expect(Date.parse(now.connected_at)).toBeGreaterThan(Date.parse(first?.connected_at ?? ''));
    expect(await realAgent()).toBeDefined();
  });

  it('ignores status reports for services not given to the reporting agent (not_placed): they neither fail a service nor keep an undeployed one stopping', async () => {
    // Deployed while only the real agent is connected, so it is placed there.
    const id = await rig.deploy({ service_slug: 'short-lived', display_name: 'x', docker_image: 'busybox:1' }, []);
    const evil = await raw(EVIL_KEY);
    evil.hello('evil-host');
    await evil.next('services.sync');
    const echoId = String((await rig.api('GET', '/r/containers/echo')).body['id']);
    evil.send({ type: 'service.status', status: statusReport(echoId, 'echo', { state: 'failed', reason: 'forged', readyReplicas: 0 }) });
    expect(await evil.next('error', (f) => f['code'] === 'not_placed')).toMatchObject({ in_reply_to: 'service.status' });
    const echo = (await rig.api('GET', '/r/containers/echo')).body as { service_status: string; status_detail: { agents: Array<{ agent_id: string }> } };
    expect(echo.service_status).toBe('running');
    expect(echo.status_detail.agents.map((a) => a.agent_id)).toEqual([RIG_AGENT_ID]);

    expect((await rig.api('POST', `/containers/${id}/undeploy`)).status).toBe(200);
    // A forged "still running" after the undeploy, then the real agent's "stopped".
    evil.send({ type: 'status.snapshot', services: [statusReport(id, 'short-lived'), statusReport('no-such-service', 'ghost')] });
    const refused = await evil.next('error', (f) => f['in_reply_to'] === 'status.snapshot');
    expect(refused).toMatchObject({ code: 'not_placed' });
    expect(String(refused['message'])).toMatch(/^status for 2 services not given to this agent ignored/);
    rig.core.emit(statusReport(id, 'short-lived', { state: 'stopped', readyReplicas: 0, replicas: [] }));
    await waitFor('short-lived stopped', async () => (await rig.api('GET', `/r/containers/short-lived`)).body['service_status'] === 'stopped');
    expect((await rig.api('DELETE', `/containers/${id}`)).status).toBe(200);
  });

  it('answers credential.resolve only for the external service placed on the asking agent (forbidden for anyone else)', async () => {
    await writeFile(join(rig.dataDir, 'credentials.json'), JSON.stringify({ [CRED_ID]: { value: 'Bearer cred-secret-value' } }), { mode: 0o600 });
    const ext = await raw(EXT_KEY);
    ext.hello('ext-host', { labels: ['ext-only'] });
    await ext.next('welcome');
    const created = await rig.api('POST', '/containers', { service_slug: 'ext-svc', display_name: 'e', service_type: 'external', external_url: 'https://api.example.com', external_auth_credential_id: CRED_ID, required_labels: ['ext-only'] });
    const id = String(created.body['id']);
    await rig.api('POST', `/containers/${id}/deploy`);
    await ext.next('services.sync', (f) => (f['services'] as Array<{ id: string }>).some((s) => s.id === id));

    const evil = await raw(EVIL_KEY);
    evil.hello('evil-host');
    await evil.next('welcome');
    evil.send({ type: 'credential.resolve', request_id: 'r1', service_id: id, credential_id: CRED_ID });
    const refused = await evil.next('credential.resolved');
    expect(refused).toMatchObject({ request_id: 'r1', error: { code: 'forbidden' } });
    expect(refused['value']).toBeUndefined();

    ext.send({ type: 'credential.resolve', request_id: 'r2', service_id: id, credential_id: CRED_ID });
    expect(await ext.next('credential.resolved')).toMatchObject({ request_id: 'r2', value: 'Bearer cred-secret-value' });
    expect(JSON.stringify(evil.frames)).not.toContain('cred-secret-value');
  });
});
