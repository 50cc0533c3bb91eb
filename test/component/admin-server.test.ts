import { mkdtemp, rm, stat } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { adminCall, adminGet } from '../../src/admin/admin-client.js';
import { startAdminServer, type AdminServer } from '../../src/admin/admin-server.js';
import { buildStatusView } from '../../src/admin/status-view.js';
import { ErrorCodes } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { ReplicaLogEntry, ServiceLogQuery } from '../../src/domain/log-entry.js';

const LOG_ENTRIES: ReplicaLogEntry[] = [
  { replicaIndex: 0, stream: 'stdout', time: '2026-12-02T10:00:00.000000000Z', line: 'a' },
  { replicaIndex: 1, stream: 'stderr', time: '2026-12-02T10:00:01.000000000Z', line: 'b' },
  { replicaIndex: 0, stream: 'stdout', time: '2026-12-02T10:00:02.000000000Z', line: 'c' },
];

const status = () => buildStatusView({ agentId: 'a', version: '1', now: 0, startedAt: 0, desiredRevision: -1, tunnel: undefined, labels: [], gpus: [], claims: [], services: [] });
const metrics = async () => ({ contentType: 'text/plain; version=0.0.4; charset=utf-8', text: '# TYPE x gauge\nx 1\n' });

describe('admin server', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });
  async function dir(): Promise<string> {
    const d = await mkdtemp(path.join(os.tmpdir(), 'cyberun-admin-'));
    cleanup.push(() => rm(d, { recursive: true, force: true }));
    return d;
  }
  async function start(address: Parameters<typeof startAdminServer>[0]['address'], ready = () => true): Promise<AdminServer> {
    const logs = (slug: string, query: ServiceLogQuery): AsyncIterable<ReplicaLogEntry> | undefined =>
      slug !== 'known-svc'
        ? undefined
        : (async function* () {
            yield* LOG_ENTRIES.filter((e) => query.replica === undefined || e.replicaIndex === query.replica).slice(-query.tail);
          })();
    const server = await startAdminServer({ address, status, metrics, ready, retry: (slug) => slug === 'known-svc', logs, logger: silentLogger() });
    cleanup.push(() => server.close());
    return server;
  }

  it('answers 503 "starting" on /healthz until the agent is ready, then 200', async () => {
    let ready = false;
    const server = await start({ kind: 'tcp', host: '127.0.0.1', port: 0 }, () => ready);
    expect(server.address).toMatchObject({ kind: 'tcp', host: '127.0.0.1' });
    expect((server.address as { port: number }).port).toBeGreaterThan(0);
    expect(await adminGet(server.address, '/healthz')).toEqual({ status: 503, body: 'starting\n' });
    ready = true;
    expect(await adminGet(server.address, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    expect((await adminGet(server.address, '/metrics')).body).toBe('# TYPE x gauge\nx 1\n');
    expect(JSON.parse((await adminGet(server.address, '/status')).body)).toMatchObject({ format: 1, tunnel: { kind: 'none' } });
  });

  it('creates the socket 0600 in a new 0700 dir, replaces a stale one, removes it on close', async () => {
    const base = await dir();
    const socket = path.join(base, 'state', 'admin.sock');
    const first = await start({ kind: 'unix', path: socket });
    expect((await stat(socket)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(socket))).mode & 0o777).toBe(0o700);
    await first.close();
    await expect(stat(socket)).rejects.toMatchObject({ code: 'ENOENT' });
    // A socket file left by a killed agent (no listener) is replaced.
    const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => holder.stdout.once('data', r));
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    expect((await stat(socket)).isSocket()).toBe(true);
    const second = await start({ kind: 'unix', path: socket });
    expect((await adminGet(second.address, '/healthz')).status).toBe(200);
  });

  it('refuses to take over a socket another live process serves', async () => {
    const socket = path.join(await dir(), 'admin.sock');
    await start({ kind: 'unix', path: socket });
    await expect(start({ kind: 'unix', path: socket })).rejects.toMatchObject({ code: ErrorCodes.ADMIN_LISTEN });
  });

  it('serves GET /services/{slug}/logs as NDJSON: tail and replica applied, 404 for an unknown slug, 400 naming a bad parameter', async () => {
    const server = await start({ kind: 'tcp', host: '127.0.0.1', port: 0 });
    const all = await adminGet(server.address, '/services/known-svc/logs?tail=2');
    expect(all.status).toBe(200);
    expect(all.body.trim().split('\n').map((l) => JSON.parse(l) as unknown)).toEqual([
      { replica_index: 1, stream: 'stderr', time: '2026-12-02T10:00:01.000000000Z', line: 'b' },
      { replica_index: 0, stream: 'stdout', time: '2026-12-02T10:00:02.000000000Z', line: 'c' },
    ]);
    const one = await adminGet(server.address, '/services/known-svc/logs?replica=1');
    expect(one.body.trim().split('\n').map((l) => (JSON.parse(l) as { line: string }).line)).toEqual(['b']);
    expect((await adminGet(server.address, '/services/other-svc/logs')).status).toBe(404);
    const bad = await adminGet(server.address, '/services/known-svc/logs?tail=lots&follow=maybe');
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('tail \\"lots\\" is not a whole number from 0 to 10000');
    expect(bad.body).toContain('follow \\"maybe\\" is not true or false');
  });

  it('takes one action, POST /services/{slug}/retry: 200 for a desired service, 404 otherwise, 405 for GET', async () => {
    const server = await start({ kind: 'tcp', host: '127.0.0.1', port: 0 });
    expect(await adminCall(server.address, 'POST', '/services/known-svc/retry')).toEqual({ status: 200, body: '{"retried":"known-svc"}\n' });
    const unknown = await adminCall(server.address, 'POST', '/services/other-svc/retry');
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body).error).toContain('no service "other-svc"');
    expect((await adminCall(server.address, 'GET', '/services/known-svc/retry')).status).toBe(405);
  });

  it('reads are read-only and it names its routes', async () => {
    const server = await start({ kind: 'tcp', host: '127.0.0.1', port: 0 });
    const { port } = server.address as { port: number };
    const post = await fetch(`http://127.0.0.1:${port}/status`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const missing = await adminGet(server.address, '/debug');
    expect(missing.status).toBe(404);
    expect(missing.body).toContain('/status, /metrics or /healthz');
  });
});
