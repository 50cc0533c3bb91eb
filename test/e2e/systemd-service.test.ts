import { rm } from 'node:fs/promises';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../src/gateway/gateway-server.js';
import { silentLogger } from '../../src/log.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import { tempDir } from '../helpers/agent-harness.js';
import { newTestRunId, removeTestNetwork, requireDocker, sweepTestContainers } from '../helpers/docker.js';
import { inspect, listByLabel, sweepByLabel } from '../helpers/engine.js';
import { packWithCache, requireSystemdImage, SystemdHost } from '../helpers/systemd-host.js';
import { ensureTestImages, TEST_IMAGE_HTTP } from '../helpers/test-images.js';
import { waitFor } from '../helpers/wait-for.js';

const SUITE = 'systemd service e2e tests';
const docker = await requireDocker(SUITE);
const image = docker && (await requireSystemdImage(SUITE));

const SK = 'sk-systemd-e2e-kkkkkkkkkkkkkkkkkkkkkkkk';
const AK = 'ak-systemd-e2e-secret-kkkkkkkkkkkkkkkkkkkk';
const UNIT = 'cyberun-agent';
const CONFIG = '/etc/cyberun-agent/cyberun-agent.yaml';
/** journald's PRIORITY per pino level (src/log.ts). */
const PRIORITY: Record<string, string> = { fatal: '2', error: '3', warn: '4', info: '6', debug: '7', trace: '7' };

/**
 * The agent installed on a host with a real systemd (252, PID 1 in a container built by
 * .ci/build-systemd-image.sh) exactly as docs/operations.md tells an operator: the `npm pack`
 * tarball installed globally, its own user, config and key files, the shipped unit enabled. The
 * host's Docker socket is mounted and the gateway runs on the host (the container shares its
 * network), so the sibling it deploys runs on the host engine.
 */
describe.skipIf(!image)('systemd service e2e: install, start, reload, restart, kill -9, stop, journal', () => {
  const runId = newTestRunId('systemd');
  const tag = runId.slice(-6);
  const agentId = `sysd-${tag}`;
  const network = `cyberun-sysd-${tag}`;
  const slug = `sysd-web-${tag}`;
  const dirs: string[] = [];
  let gateway: Gateway;
  let host: SystemdHost | undefined;
  let serviceId = '';

  const api = async (method: string, p: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${gateway.url}/api/v1${p}`, {
      method,
      headers: { authorization: `Bearer ${SK}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const agentSeen = async () =>
    ((await api('GET', '/agents?per_page=100')).body['agent_list'] as Array<{ agent_id: string; agent_labels: string[]; connected_at: string }>).find(
      (a) => a.agent_id === agentId,
    );
  const config = (labels: string[]) => `gateway_url: ${gateway.agentUrl}
agent_id: ${agentId}
agent_key_file: /etc/cyberun-agent/agent-key
agent_labels: [${labels.join(', ')}]
docker:
  network: ${network}
gpu:
  detect: none
reconcile:
  resync_interval: 1s
shutdown:
  drain_timeout: 5s
`;
  const writeConfig = (labels: string[]) =>
    host!.ok(`install -m 0640 -o root -g cyberun-agent /dev/stdin ${CONFIG} <<'EOF'\n${config(labels)}EOF`);
  /** `id@StartedAt` of the agent's containers on the host engine; all must be running. */
  const siblings = async (): Promise<string[]> => {
    const infos = await Promise.all((await listByLabel(`${Labels.AGENT_ID}=${agentId}`)).map((id) => inspect(id)));
    for (const i of infos) expect(i?.State.Running, `${i?.Name} running`).toBe(true);
    return infos.map((i) => `${i!.Id}@${i!.State.StartedAt}`).sort();
  };
  const healthz = () => host!.sh(`cyberun-agent status --healthz --config ${CONFIG}`);
  const onlineAgain = (since: string) =>
    waitFor('the agent connected again', async () => {
      const a = await agentSeen();
      return a !== undefined && a.connected_at !== since ? a : undefined;
    }, 60_000);

  beforeAll(async () => {
    await ensureTestImages();
    const work = await tempDir('systemd-e2e');
    const gwDir = await tempDir('systemd-gw');
    dirs.push(work, gwDir);
    const { tarball, cache } = await packWithCache(work);
    gateway = await startGateway({ port: 0, dataDir: gwDir, apiKeys: [SK], agentKeys: [AK], logger: silentLogger(), heartbeatIntervalMs: 500 });
    host = await SystemdHost.start(`cyb-systemd-${tag}`, runId);
    // The host has Docker: its `docker` group owns the socket (same gid as on this machine).
    await host.ok('groupadd -g "$(stat -c %g /var/run/docker.sock)" docker');
    await host.copyIn(tarball, '/root/cyberun-agent.tgz');
    await host.copyIn(cache, '/root/.npm');
    // docs/operations.md, "Install as a systemd service", steps 1-4 (offline: no registry in here).
    await host.ok('cd /root && npm install -g --prefix /usr/local --offline --no-audit --no-fund ./cyberun-agent.tgz');
    await host.ok('useradd --system --home-dir /var/lib/cyberun-agent --shell /usr/sbin/nologin cyberun-agent');
    await host.ok('install -d -m 0750 -o root -g cyberun-agent /etc/cyberun-agent');
    await writeConfig(['eu-west']);
    await host.ok(`install -m 0600 -o cyberun-agent -g cyberun-agent /dev/stdin /etc/cyberun-agent/agent-key <<<'${AK}'`);
    await host.ok(`cyberun-agent config check --config ${CONFIG}`);
    await host.ok('install -m 0644 "$(npm root -g --prefix /usr/local)/cyberun-agent/deploy/systemd/cyberun-agent.service" /etc/systemd/system/ && systemctl daemon-reload');
  }, 600_000);

  afterAll(async () => {
    await host?.remove();
    await sweepTestContainers(runId); // the host container, also when beforeAll failed midway
    await gateway?.close();
    await sweepByLabel(`${Labels.AGENT_ID}=${agentId}`);
    await removeTestNetwork(network);
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('`systemctl enable --now` returns once the agent is ready (healthz answers at once)', async () => {
    await host!.ok(`systemctl enable --now ${UNIT}`);
    const ready = await healthz();
    expect(ready.code, ready.stdout + ready.stderr).toBe(0);
    expect(await host!.prop(UNIT, 'ActiveState')).toBe('active');
    expect(await host!.prop(UNIT, 'SubState')).toBe('running');
    expect(await host!.prop(UNIT, 'UnitFileState')).toBe('enabled');
    // The admin socket sits in the unit's StateDirectory=, where root's `status` finds it.
    expect((await host!.ok('stat -c "%U %a" /var/lib/cyberun-agent/admin.sock')).trim()).toBe('cyberun-agent 600');
  }, 120_000);

  it('connects to the gateway and deploys a sibling container on the host engine', async () => {
    // GET /agents lists connected agents only.
    await waitFor('the agent listed by the gateway', async () => (await agentSeen()) !== undefined, 60_000);
    const created = await api('POST', '/containers', { service_slug: slug, display_name: slug, docker_image: TEST_IMAGE_HTTP });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    serviceId = String(created.body['id']);
    expect((await api('POST', `/containers/${serviceId}/deploy`)).status).toBe(200);
    await waitFor(`${slug} running`, async () => (await api('GET', `/r/containers/${slug}`)).body['service_status'] === 'running', 90_000);
    expect(await siblings()).toHaveLength(1);
  }, 120_000);

  it('`systemctl reload` changes the labels live: the gateway sees them, the process stays', async () => {
    const pid = await host!.prop(UNIT, 'MainPID');
    const before = await siblings();
    await writeConfig(['eu-west', `reloaded-${tag}`]);
    await host!.ok(`systemctl reload ${UNIT}`);
    const seen = await waitFor('the new labels at the gateway', async () => {
      const a = await agentSeen();
      return a?.agent_labels.includes(`reloaded-${tag}`) ? a : undefined;
    }, 30_000);
    expect(seen.agent_labels.sort()).toEqual(['eu-west', `reloaded-${tag}`].sort());
    expect(await host!.prop(UNIT, 'MainPID')).toBe(pid);
    expect(await siblings()).toEqual(before);
  }, 120_000);

  it('`systemctl restart` returns ready with a new process; the sibling keeps its id and StartedAt', async () => {
    const pid = await host!.prop(UNIT, 'MainPID');
    const before = await siblings();
    const since = (await agentSeen())!.connected_at;
    await host!.ok(`systemctl restart ${UNIT}`);
    expect((await healthz()).code).toBe(0);
    expect(await host!.prop(UNIT, 'MainPID')).not.toBe(pid);
    await onlineAgain(since);
    await waitFor(`${slug} running after the restart`, async () => (await api('GET', `/r/containers/${slug}`)).body['service_status'] === 'running', 30_000);
    expect(await siblings()).toEqual(before);
  }, 120_000);

  it('`kill -9` of the agent: systemd restarts it (Restart=on-failure); the sibling is untouched', async () => {
    const pid = await host!.prop(UNIT, 'MainPID');
    const restarts = Number(await host!.prop(UNIT, 'NRestarts'));
    const before = await siblings();
    const since = (await agentSeen())!.connected_at;
    await host!.ok(`kill -9 ${pid}`);
    // RestartSec=5s, then ExecStartPost waits for readiness before the unit is active again.
    await waitFor('systemd restarted the agent', async () =>
      Number(await host!.prop(UNIT, 'NRestarts')) === restarts + 1 && (await host!.prop(UNIT, 'ActiveState')) === 'active', 60_000);
    expect(await host!.prop(UNIT, 'MainPID')).not.toBe(pid);
    expect((await healthz()).code).toBe(0);
    await onlineAgain(since);
    expect(await siblings()).toEqual(before);
  }, 120_000);

  it('`systemctl stop` exits cleanly (status 0) and leaves the sibling running', async () => {
    const before = await siblings();
    await host!.ok(`systemctl stop ${UNIT}`);
    expect(await host!.prop(UNIT, 'ActiveState')).toBe('inactive');
    expect(await host!.prop(UNIT, 'Result')).toBe('success');
    expect(await host!.prop(UNIT, 'ExecMainStatus')).toBe('0');
    expect(await siblings()).toEqual(before);
    await waitFor('the gateway no longer lists the agent', async () => (await agentSeen()) === undefined, 30_000);
  }, 120_000);

  it('`journalctl -u cyberun-agent -o json`: the agent\'s lines, their level as PRIORITY, no secret', async () => {
    const out = await host!.ok(`journalctl -u ${UNIT} -o json --no-pager`);
    expect(out).not.toContain(AK);
    expect(out).not.toContain(AK.slice(3));
    const entries = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const agentLines = entries
      .filter((e) => e['_TRANSPORT'] === 'stdout' && typeof e['MESSAGE'] === 'string' && (e['MESSAGE'] as string).startsWith('{"level":'))
      .map((e) => ({ priority: e['PRIORITY'], line: JSON.parse(e['MESSAGE'] as string) as { level: string; msg: string } }));
    const msgs = agentLines.map((l) => l.line.msg);
    expect(msgs).toContain('agent running');
    expect(msgs).toContain('tunnel connected');
    for (const { priority, line } of agentLines) expect(priority, `${line.level}: ${line.msg}`).toBe(PRIORITY[line.level]);
    const levels = new Set(agentLines.map((l) => l.line.level));
    expect(levels.has('info')).toBe(true);
    // A warn line every start logs here: image GC cannot measure /var/lib/docker, which is not in the container.
    expect(levels.has('warn')).toBe(true);
    // journald stripped the <N> prefix: every MESSAGE is the JSON line itself.
    expect(entries.some((e) => typeof e['MESSAGE'] === 'string' && /^<\d>/.test(e['MESSAGE'] as string))).toBe(false);
  }, 60_000);
});
