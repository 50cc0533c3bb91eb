import { execFile } from 'node:child_process';
import { rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent.js';
import { adminGet } from '../../src/admin/admin-client.js';
import type { AdminStatus } from '../../src/admin/status-view.js';
import { statusCommand } from '../../src/cli/status.js';
import { reloadAgentConfig } from '../../src/cli/reload.js';
import type { CliIo } from '../../src/cli/io.js';
import { ErrorCodes } from '../../src/errors.js';
import { startGateway, type Gateway } from '../../src/gateway/gateway-server.js';
import { silentLogger } from '../../src/log.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import type { ServiceDefinition } from '../../src/service-definition/types.js';
import { newTestRunId, removeTestNetwork, requireDocker } from '../helpers/docker.js';
import { sweepByLabel } from '../helpers/engine.js';
import { ensureTestImages } from '../helpers/test-images.js';
import { noGpuInventory, startTestAgent, tempDir, testConfig, type TestAgent } from '../helpers/agent-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { parsePromText } from '../helpers/prom-text.js';
import { testDefinition } from '../helpers/test-definition.js';

const exec = promisify(execFile);
const docker = await requireDocker('admin endpoint / status CLI integration tests');

function capture(env: Record<string, string | undefined> = {}): { io: CliIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: { write: (c: string) => (out += c) },
    stderr: { write: (c: string) => (err += c) },
    stdin: new PassThrough(),
    env: { HOME: process.env['HOME'], ...env },
    cwd: process.cwd(),
  };
  return { io, out: () => out, err: () => err };
}

describe.skipIf(!docker)('admin endpoint, status CLI and metrics against a running agent', () => {
  const runId = newTestRunId('admin');
  const tag = runId.slice(-6);
  const slug = (name: string) => `${name}-${tag}`;
  let t: TestAgent;
  let socket: string;

  function spec(name: string, over: Partial<ServiceDefinition> = {}): ServiceDefinition {
    return testDefinition(slug(name), { display_name: name, ...over });
  }

  const metrics = async () => {
    const answer = await adminGet({ kind: 'unix', path: socket }, '/metrics');
    expect(answer.status).toBe(200);
    return parsePromText(answer.body);
  };

  beforeAll(async () => {
    await ensureTestImages();
    t = await startTestAgent(testConfig(runId, await tempDir('admin-state')));
    socket = path.join(t.config.stateDir, 'admin.sock');
    t.agent.reconciler.applyDesired(
      [
        { id: 'svc-alpha', definition: spec('alpha') },
        { id: 'svc-beta', definition: spec('beta', { replica_count: 2 }) },
        { id: 'svc-gamma', definition: spec('gamma', { env_config: [{ env_name: 'MODE', env_value: 'crash' }, { env_name: 'SECRET_TOKEN', env_value: 'do-not-show-me' }] }) },
      ],
      1,
      'test',
    );
    await waitFor('alpha and beta running, gamma failed', () => {
      const s = (id: string) => t.status(id)?.state;
      return s('svc-alpha') === 'running' && s('svc-beta') === 'running' && s('svc-gamma') === 'failed';
    }, 60_000);
  });

  afterAll(async () => {
    await t?.stop();
    if (t) await sweepByLabel(`${Labels.AGENT_ID}=${t.config.agentId}`);
    await removeTestNetwork(t?.config.docker.network ?? '');
    if (t) await rm(t.config.stateDir, { recursive: true, force: true });
  });

  it('listens on a 0600 unix socket in the state dir and answers /healthz, 404 and 405', async () => {
    expect((await stat(socket)).mode & 0o777).toBe(0o600);
    expect(await adminGet({ kind: 'unix', path: socket }, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    expect((await adminGet({ kind: 'unix', path: socket }, '/nope')).status).toBe(404);
  });

  it('refuses a second agent on the same state dir before it touches anything', async () => {
    await expect(Agent.start({ config: { ...t.config }, logger: silentLogger(), readInventory: async () => noGpuInventory })).rejects.toMatchObject({
      code: ErrorCodes.ADMIN_LISTEN,
    });
    expect((await adminGet({ kind: 'unix', path: socket }, '/healthz')).status).toBe(200);
  });

  it('`status` prints the three services with replica, phase, health/reason, restarts and age, and the tunnel', async () => {
    const c = capture();
    expect(await statusCommand(['--admin', socket], c.io)).toBe(0);
    const text = c.out();
    const lines = text.split('\n');
    expect(lines[1]).toBe('tunnel: none (standalone: no gateway configured)');
    expect(lines.find((l) => l.startsWith('SERVICE'))).toMatch(/^SERVICE\s+STATE\s+REPLICA\s+PHASE\s+HEALTH\/REASON\s+GPUS\s+RESTARTS\s+AGE$/);
    const row = (name: string, replica: number) => lines.find((l) => new RegExp(`^${slug(name)}\\s+\\S+ \\d+/\\d+\\s+${replica}\\s`).test(l));
    expect(row('alpha', 0)).toMatch(/running 1\/1\s+0\s+ready\s+healthy\s+-\s+0\s+\d+s$/);
    expect(row('beta', 0)).toMatch(/running 2\/2\s+0\s+ready\s+healthy/);
    expect(row('beta', 1)).toMatch(/running 2\/2\s+1\s+ready\s+healthy/);
    expect(row('gamma', 0)).toMatch(/failed 0\/1\s+0\s+failed\s+.*exit.*3.*\s+-\s+[1-9]\d*\s+\d+s$/);
    expect(text).not.toContain('do-not-show-me');
    expect(c.err()).toBe('');
  });

  it('`status --json` gives the same picture as data; the config flags find the socket without --admin', async () => {
    const c = capture();
    expect(await statusCommand(['--json', '--state-dir', t.config.stateDir, '--set', 'gpu.detect=none'], c.io)).toBe(0);
    const status = JSON.parse(c.out()) as AdminStatus;
    expect(status.tunnel).toEqual({ kind: 'none' });
    expect(status.services.map((s) => [s.slug, s.state, s.readyReplicas, s.replicas.map((r) => r.phase)])).toEqual([
      [slug('alpha'), 'running', 1, ['ready']],
      [slug('beta'), 'running', 2, ['ready', 'ready']],
      [slug('gamma'), 'failed', 0, ['failed']],
    ]);
    const gamma = status.services[2]!.replicas[0]!;
    expect(gamma.restarts).toBeGreaterThan(0);
    expect(gamma.reason).toMatch(/exit/);
    expect(status.services[0]!.replicas[0]!.containerId).toMatch(/^[0-9a-f]{12}$/);
    expect(c.out()).not.toContain('do-not-show-me');
  });

  it('`status` exits 1 with a hint when no agent answers', async () => {
    const c = capture();
    expect(await statusCommand(['--admin', path.join(t.config.stateDir, 'nobody.sock')], c.io)).toBe(1);
    expect(c.err()).toMatch(/did not answer.*is the agent running/);
  });

  it('/metrics parses as Prometheus text; replica gauges match; the restart counter moves after a docker kill', async () => {
    const before = await metrics();
    expect(before.value('cyberun_replicas', { service: slug('beta'), phase: 'ready' })).toBe(2);
    expect(before.value('cyberun_replicas', { service: slug('gamma'), phase: 'failed' })).toBe(1);
    expect(before.value('cyberun_services', { state: 'running' })).toBe(2);
    expect(before.value('cyberun_replica_restarts_total', { service: slug('gamma') })).toBeGreaterThan(0);
    expect(before.value('cyberun_replica_restarts_total', { service: slug('alpha') }) ?? 0).toBe(0);
    const alpha = t.status('svc-alpha')!.replicas[0]!;
    await exec('docker', ['kill', alpha.containerId!]);
    await waitFor('alpha restarted and ready', () => {
      const r = t.status('svc-alpha')?.replicas[0];
      return r?.phase === 'ready' && r.restartCount === 1;
    }, 30_000);
    const after = await metrics();
    expect(after.value('cyberun_replica_restarts_total', { service: slug('alpha'), replica: '0' })).toBe(1);
  });

  it('SIGHUP reload applies labels live and names the keys that need a restart', async () => {
    const file = path.join(t.config.stateDir, 'reload.yaml');
    await writeFile(file, `agent_labels: [reloaded-${tag}]\ndocker:\n  network: other-net\n`);
    const change = await reloadAgentConfig(t.agent, { argv: ['--config', file, '--state-dir', t.config.stateDir], env: {}, cwd: t.config.stateDir }, silentLogger());
    expect(change?.live).toContain('agent_labels');
    expect(change?.needsRestart).toContain('docker.network');
    expect(t.agent.labels()).toContain(`reloaded-${tag}`);
    expect(t.config.docker.network).not.toBe('other-net');
    const status = JSON.parse((await adminGet({ kind: 'unix', path: socket }, '/status')).body) as AdminStatus;
    expect(status.labels).toContain(`reloaded-${tag}`);
    // An invalid file is refused as a whole; the running config stays.
    await writeFile(file, 'agent_labels: [UPPER]\n');
    expect(await reloadAgentConfig(t.agent, { argv: ['--config', file], env: {}, cwd: t.config.stateDir }, silentLogger())).toBeUndefined();
    expect(t.agent.labels()).toContain(`reloaded-${tag}`);
  });
});

describe.skipIf(!docker)('tunnel metrics across a gateway restart', () => {
  const runId = newTestRunId('admin-gw');
  let gateway: Gateway | undefined;
  let t: TestAgent | undefined;
  const dirs: string[] = [];

  afterAll(async () => {
    await t?.stop();
    await gateway?.close();
    await removeTestNetwork(t?.config.docker.network ?? '');
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('cyberun_tunnel_connected follows the tunnel and cyberun_tunnel_reconnects_total counts the reconnect', async () => {
    const dataDir = await tempDir('admin-gw');
    const stateDir = await tempDir('admin-gw-state');
    dirs.push(dataDir, stateDir);
    const agentKey = 'ak-admin-metrics-test-key-000000000000';
    const open = (port: number) => startGateway({ port, dataDir, apiKeys: ['sk-admin-test-000000000000-k'], agentKeys: [agentKey], logger: silentLogger() });
    gateway = await open(0);
    const port = gateway.port;
    t = await startTestAgent(testConfig(runId, stateDir, { gatewayUrl: gateway.agentUrl, agentKey, admin: { listen: '127.0.0.1:0' } }));
    const address = t.agent.adminAddress()!;
    expect(address).toMatchObject({ kind: 'tcp', host: '127.0.0.1' });
    const scrape = async () => parsePromText((await adminGet(address, '/metrics')).body);
    await waitFor('tunnel connected', async () => (await scrape()).value('cyberun_tunnel_connected') === 1, 15_000);
    expect((await scrape()).value('cyberun_tunnel_reconnects_total')).toBe(0);
    await gateway.close();
    await waitFor('tunnel lost', async () => (await scrape()).value('cyberun_tunnel_connected') === 0, 15_000);
    gateway = await open(port);
    await waitFor('tunnel back', async () => (await scrape()).value('cyberun_tunnel_connected') === 1, 20_000);
    expect((await scrape()).value('cyberun_tunnel_reconnects_total')).toBe(1);
    const status = JSON.parse((await adminGet(address, '/status')).body) as AdminStatus;
    expect(status.tunnel.kind).toBe('connected');
  });
});
