import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetch, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminGet } from '../../src/admin/admin-client.js';
import { startGateway, type Gateway } from '../../src/gateway/gateway-server.js';
import { silentLogger } from '../../src/log.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import { tempDir } from '../helpers/agent-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { newTestRunId, removeTestNetwork, requireDocker } from '../helpers/docker.js';
import { inspect, listByLabel, sweepByLabel } from '../helpers/engine.js';
import { ensureNodeTestImage } from '../helpers/node-image.js';
import { parsePromText } from '../helpers/prom-text.js';
import { ensureTestImages } from '../helpers/test-images.js';
import { zeros } from '../helpers/byte-streams.js';

const docker = await requireDocker('agent shutdown e2e tests');
const BIN = fileURLToPath(new URL('../../bin/cyberun-agent.js', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

const SK = 'sk-agent-shutdown-e2e-kkkkk';
const AK = 'ak-agent-shutdown-e2e-kkkkk';
const auth = { authorization: `Bearer ${SK}` };
const MIB = 1024 ** 2;
const GIB = 1024 ** 3;
/** shutdown.drain_timeout of the child agent. */
const DRAIN_MS = 5_000;
/**
 * Bound on everything that follows SIGTERM (the download settling, the process exiting): the drain
 * timeout, the registry's cut grace (2 s), the tunnel's close handshake (≤ 2 s), and room for a
 * loaded 2-core machine. A bounded wait, not a performance threshold.
 */
const AFTER_SIGTERM_BOUND_MS = DRAIN_MS + 20_000;
/** The client reads at about this pace: a 1 GiB download takes ~25 s, far longer than the drain. */
const CLIENT_BYTES_PER_S = 40 * MIB;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The agent as operators run it: `cyberun-agent run` as a child process with a tunnel to a local
 * gateway in this process, stopped with SIGTERM during a proxied download and started again.
 * Needs `npm run build` (the test script runs it first).
 */
describe.skipIf(!docker)('agent shutdown e2e: SIGTERM during a proxied 1 GiB download, adoption, proxy metrics', () => {
  const runId = newTestRunId('shutdown');
  const tag = runId.slice(-6);
  const agentId = `test-${runId}`.slice(0, 60);
  const network = `cyberun-${runId}`.slice(0, 60);
  const NODE = `shutnode-${tag}`;
  const BUSY = `shutbusy-${tag}`;
  const dirs: string[] = [];
  let gateway: Gateway;
  let stateDir: string;
  let child: ChildProcess | undefined;
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  let output = '';
  const ids: Record<string, string> = {};

  const start = (): void => {
    output = '';
    const proc = spawn(
      process.execPath,
      [BIN, 'run', '--state-dir', stateDir, '--agent-id', agentId, '--gateway-url', gateway.agentUrl,
        '--set', `docker.network=${network}`, '--set', `shutdown.drain_timeout=${DRAIN_MS / 1000}s`,
        '--set', 'gpu.detect=none', '--set', 'reconcile.resync_interval=1s',
        '--set', 'health.interval=500ms', '--set', 'health.timeout=400ms', '--log-level', 'info'],
      {
        // cwd: the state dir, so no stray ./cyberun-agent.yaml is picked up.
        cwd: stateDir,
        env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', CYBERUN_AGENT_KEY: AK },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    proc.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
    proc.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
    exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    child = proc;
  };
  const withOutput = (err: Error): never => {
    throw new Error(`${err.message}\nagent output:\n${output.slice(-6_000)}`);
  };

  const api = async (method: string, p: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${gateway.url}/api/v1${p}`, { method, headers: { ...auth, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const serviceStatus = async (slug: string) => (await api('GET', `/r/containers/${slug}`)).body['service_status'];
  const running = (slug: string, timeoutMs = 60_000) =>
    waitFor(`${slug} running in the gateway`, async () => (await serviceStatus(slug)) === 'running', timeoutMs).catch(withOutput);
  const proxyUrl = (slug: string, rest: string) => `${gateway.url}/api/v1/r/containers/${slug}${rest}`;

  /** `id@StartedAt` of every container this agent owns, sorted; all must be running. */
  const containers = async (): Promise<string[]> => {
    const infos = await Promise.all((await listByLabel(`${Labels.AGENT_ID}=${agentId}`)).map((id) => inspect(id)));
    for (const i of infos) expect(i?.State.Running, `${i?.Name} running`).toBe(true);
    return infos.map((i) => `${i!.Id}@${i!.State.StartedAt}`).sort();
  };

  const scrape = async () => {
    const answer = await adminGet({ kind: 'unix', path: path.join(stateDir, 'admin.sock') }, '/metrics');
    expect(answer.status).toBe(200);
    return parsePromText(answer.body);
  };

  beforeAll(async () => {
    if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run "npm run build" first (npm test does)`);
    await ensureTestImages();
    await ensureNodeTestImage();
    const dataDir = await tempDir('shutdown-gw');
    stateDir = await tempDir('shutdown-state');
    dirs.push(dataDir, stateDir);
    gateway = await startGateway({ port: 0, dataDir, apiKeys: [SK], agentKeys: [AK], logger: silentLogger(), heartbeatIntervalMs: 500 });
    start();
    await waitFor('the agent connected to the gateway', async () => {
      const agents = (await api('GET', '/agents')).body['agent_list'] as Array<{ agent_id: string }>;
      return agents.some((a) => a.agent_id === agentId);
    }, 60_000).catch(withOutput);
    for (const [slug, image] of [[NODE, 'cyberun-test/node-http:1'], [BUSY, 'cyberun-test/busybox-http:1']] as const) {
      const created = await api('POST', '/containers', { service_slug: slug, display_name: slug, docker_image: image });
      expect(created.status, JSON.stringify(created.body)).toBe(200);
      ids[slug] = String(created.body['id']);
      expect((await api('POST', `/containers/${ids[slug]}/deploy`)).status).toBe(200);
    }
    await running(NODE);
    await running(BUSY);
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    await gateway?.close();
    await sweepByLabel(`${Labels.AGENT_ID}=${agentId}`);
    await removeTestNetwork(network);
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('/metrics: requests, durations and errors per service move exactly with proxied traffic', async () => {
    const N = 7;
    const before = await scrape();
    const ok200 = (m: typeof before) => m.value('cyberun_proxy_requests_total', { service: NODE, code: '200' }) ?? 0;
    const count = (m: typeof before, slug: string) => m.value('cyberun_proxy_request_duration_seconds_count', { service: slug }) ?? 0;
    const errors = (m: typeof before, slug: string) => m.value('cyberun_proxy_errors_total', { service: slug }) ?? 0;
    const code = (m: typeof before, slug: string, c: string) => m.value('cyberun_proxy_requests_total', { service: slug, code: c }) ?? 0;
    expect(before.types.get('cyberun_proxy_requests_total')).toBe('counter');
    expect(before.types.get('cyberun_proxy_request_duration_seconds')).toBe('histogram');

    for (let i = 0; i < N; i++) {
      const res = await request(proxyUrl(NODE, `/echo/m?i=${i}`), { headers: auth });
      expect(res.statusCode).toBe(200);
      expect(((await res.body.json()) as { url: string }).url).toBe(`/echo/m?i=${i}`);
    }
    // The agent counts a request when its stream closes, just after the client saw the body end.
    let after = await waitFor(`${N} requests counted`, async () => {
      const m = await scrape();
      return ok200(m) - ok200(before) >= N && count(m, NODE) - count(before, NODE) >= N ? m : undefined;
    }, 10_000);
    expect(ok200(after) - ok200(before)).toBe(N);
    expect(count(after, NODE) - count(before, NODE)).toBe(N);
    expect(errors(after, NODE) - errors(before, NODE)).toBe(0);
    // Every observation lands in the +Inf bucket, and the sum is a positive duration.
    expect(after.value('cyberun_proxy_request_duration_seconds_bucket', { service: NODE, le: '+Inf' })).toBe(count(after, NODE));
    expect(after.value('cyberun_proxy_request_duration_seconds_sum', { service: NODE })).toBeGreaterThan(0);

    // A path the service answers with an error status: counted under its code, not an error (< 500).
    const missing = await request(proxyUrl(BUSY, '/no-such-file'), { headers: auth });
    expect(missing.statusCode).toBe(404);
    await missing.body.dump();
    const m404 = await waitFor('the 404 counted', async () => {
      const m = await scrape();
      return code(m, BUSY, '404') - code(after, BUSY, '404') >= 1 ? m : undefined;
    }, 10_000);
    expect(code(m404, BUSY, '404') - code(after, BUSY, '404')).toBe(1);
    expect(count(m404, BUSY) - count(after, BUSY)).toBe(1);
    expect(errors(m404, BUSY) - errors(after, BUSY)).toBe(0);
    after = m404;

    // A request reset before any response (the client gives up mid-upload): code "0" and an error.
    const progress = { consumed: 0 };
    const abort = new AbortController();
    const upload = request(proxyUrl(NODE, '/upload'), {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(256 * MIB) },
      body: zeros(256 * MIB, progress),
      signal: abort.signal,
    }).then(
      () => 'answered',
      () => 'rejected',
    );
    // With end-to-end backpressure, 32 MiB pulled by the client means the stream runs through the agent.
    await waitFor('the upload flows through the agent', () => progress.consumed >= 32 * MIB, 20_000, 20);
    abort.abort();
    expect(await upload).toBe('rejected');
    const reset = await waitFor('the reset counted', async () => {
      const m = await scrape();
      return code(m, NODE, '0') - code(after, NODE, '0') >= 1 ? m : undefined;
    }, 10_000);
    expect(code(reset, NODE, '0') - code(after, NODE, '0')).toBe(1);
    expect(errors(reset, NODE) - errors(after, NODE)).toBe(1);
    expect(count(reset, NODE) - count(after, NODE)).toBe(1);
    expect(ok200(reset) - ok200(after)).toBe(0);
  }, 60_000);

  it('SIGTERM mid-download: the download completes or is cut cleanly, the agent exits 0, containers keep running', async () => {
    const before = await containers();
    expect(before).toHaveLength(2);

    const res = await request(proxyUrl(NODE, `/bytes?n=${GIB}`), { headers: auth });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(GIB));
    let received = 0;
    const download = (async (): Promise<{ kind: 'complete' } | { kind: 'error'; err: unknown }> => {
      const began = performance.now();
      try {
        for await (const chunk of res.body) {
          received += (chunk as Buffer).byteLength;
          const ahead = received / CLIENT_BYTES_PER_S - (performance.now() - began) / 1000;
          if (ahead > 0.01) await sleep(ahead * 1000);
        }
        return { kind: 'complete' };
      } catch (err) {
        return { kind: 'error', err };
      }
    })();

    await waitFor('64 MiB received', () => received >= 64 * MIB, 30_000, 20);
    const atSigterm = received;
    const sigtermAt = performance.now();
    child!.kill('SIGTERM');

    const outcome = await Promise.race([download, sleep(AFTER_SIGTERM_BOUND_MS).then(() => ({ kind: 'hung' as const }))]);
    const settledAfter = (performance.now() - sigtermAt) / 1000;
    if (outcome.kind === 'hung') res.body.destroy();
    const exit = await Promise.race([exited!, sleep(AFTER_SIGTERM_BOUND_MS).then(() => 'still running' as const)]);
    const exitAfter = (performance.now() - sigtermAt) / 1000;
    process.stderr.write(
      `[shutdown] download ${outcome.kind} after SIGTERM: ${(atSigterm / MIB).toFixed(0)} MiB before, ` +
        `${((received - atSigterm) / MIB).toFixed(0)} MiB during the drain, settled after ${settledAfter.toFixed(1)} s` +
        `${outcome.kind === 'error' ? ` (${String((outcome.err as Error).message ?? outcome.err)})` : ''}; ` +
        `agent exit ${JSON.stringify(exit)} after ${exitAfter.toFixed(1)} s\n`,
    );

    expect(outcome.kind, `the download must end (complete or cut) within ${AFTER_SIGTERM_BOUND_MS} ms of SIGTERM\n${output.slice(-4_000)}`).not.toBe('hung');
    if (outcome.kind === 'complete') expect(received).toBe(GIB);
    else expect(received).toBeLessThan(GIB);
    expect(exit, output.slice(-4_000)).toEqual({ code: 0, signal: null });
    expect(output).toMatch(/"msg":"drain finished"/);
    expect(output).toMatch(/shutting down \(containers keep running\)/);
    expect(await containers()).toEqual(before);
    // With no agent connected the gateway refuses the service's traffic rather than hanging it.
    const refused = await request(proxyUrl(NODE, '/echo'), { headers: auth });
    await refused.body.dump();
    expect(refused.statusCode).toBeGreaterThanOrEqual(500);
  }, 90_000);

  it('the next start (same state dir and agent id) adopts the running containers: same IDs and StartedAt, running again', async () => {
    expect(child!.exitCode).toBe(0);
    const before = await containers();
    start();
    await running(NODE);
    await running(BUSY);
    const echo = await request(proxyUrl(NODE, '/echo/after-restart'), { headers: auth });
    expect(echo.statusCode).toBe(200);
    const hostname = ((await echo.body.json()) as { hostname: string }).hostname;
    expect(before.some((c) => c.startsWith(hostname))).toBe(true);
    // A few resync passes (1 s) for the restarted agent to do anything it should not.
    await sleep(3_000);
    expect(await containers()).toEqual(before);
    expect(await serviceStatus(NODE)).toBe('running');
    expect(await serviceStatus(BUSY)).toBe('running');
    expect(output).not.toMatch(/"msg":"(removing|stopping|created|starting) replica/);
  }, 90_000);
});
