import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { adminGet } from '../src/admin/admin-client.js';
import type { AdminStatus } from '../src/admin/status-view.js';
import { Labels } from '../src/domain/ownership-labels.js';
import { dockerAvailable, removeTestNetwork } from '../test/helpers/docker.js';
import { sweepByLabel } from '../test/helpers/engine.js';
import { REPO_ROOT } from '../test/helpers/repo-root.js';
import { ensureTestImages, TEST_IMAGE_HTTP } from '../test/helpers/test-images.js';
import { processCpuSeconds } from './process-cpu.js';
import type { Benchmark, BenchResult } from './types.js';

const exec = promisify(execFile);
const SERVICES = 20;
const SAMPLE_SECONDS = 20;
const RSS_GOAL_MB = 80;

function rssKiB(pid: number, status: string): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
}

/**
 * The agent's idle footprint: `node bin/cyberun-agent.js run --services-dir …` as a child process
 * (the compiled build, as operators run it) with 20 one-replica busybox services, sampled once
 * every service is running: RSS from /proc/<pid>/status each second, CPU from /proc/<pid>/stat
 * over the whole window. Absolute numbers (no baseline).
 */
export const idleBenchmark: Benchmark = {
  name: 'idle',
  async available() {
    if (process.platform !== 'linux') return 'needs /proc (Linux)';
    return (await dockerAvailable()) ? true : 'no Docker Engine at /var/run/docker.sock';
  },
  async run(): Promise<BenchResult[]> {
    await ensureTestImages();
    await exec(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(REPO_ROOT, 'tsconfig.build.json')], { cwd: REPO_ROOT, timeout: 300_000 });
    const work = await mkdtemp(path.join(os.tmpdir(), 'cyberun-bench-idle-'));
    const servicesDir = path.join(work, 'services');
    const stateDir = path.join(work, 'state');
    const tag = `${process.pid}`;
    const agentId = `bench-idle-${tag}`;
    const network = `cyberun-idle-${tag}`;
    await mkdir(servicesDir, { recursive: true });
    for (let i = 0; i < SERVICES; i++) {
      const spec = { service_slug: `idle-${tag}-${i}`, display_name: `idle ${i}`, docker_image: TEST_IMAGE_HTTP, exposed_port: 8080, health_path: '/health', replica_count: 1 };
      await writeFile(path.join(servicesDir, `idle-${i}.json`), JSON.stringify(spec));
    }
    const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], HOME: process.env['HOME'], NODE_ENV: 'production' };
    const rows: BenchResult[] = [];
    let child: ChildProcess | undefined;
    try {
      // With default flags (semi-spaces up to 16 MiB), then with 1, 2, 4 and 8 MiB, which trade
      // GC frequency for RSS (docs/operations.md, Footprint, weighs them against CPU per proxied
      // request). A first, unmeasured start creates the containers; every measured variant then
      // adopts them (agent restarts never restart workloads), since creating 20 containers grows
      // a heap more than adopting them.
      const variants = [
        { label: 'default flags', nodeArgs: [] as string[] },
        ...[1, 2, 4, 8].map((mib) => ({ label: `--max-semi-space-size=${mib}`, nodeArgs: [`--max-semi-space-size=${mib}`] })),
      ];
      const start = (nodeArgs: string[]): ChildProcess =>
        spawn(
          process.execPath,
          [...nodeArgs, path.join(REPO_ROOT, 'bin', 'cyberun-agent.js'), 'run', '--services-dir', servicesDir, '--state-dir', stateDir, '--agent-id', agentId, '--set', `docker.network=${network}`, '--set', 'gpu.detect=none', '--log-level', 'warn'],
          { cwd: work, env, stdio: ['ignore', 'ignore', 'inherit'] },
        );
      child = start([]);
      await allRunning(child, stateDir);
      child.kill('SIGTERM');
      await exited(child);
      for (const variant of variants) {
        child = start(variant.nodeArgs);
        rows.push(...(await measure(child, stateDir, variant.label)));
      }
      return rows;
    } finally {
      if (child && child.exitCode === null) {
        child.kill('SIGKILL');
        await exited(child);
      }
      await sweepByLabel(`${Labels.AGENT_ID}=${agentId}`);
      await removeTestNetwork(network);
      await rm(work, { recursive: true, force: true });
    }
  },
};

/** Waits until the agent reports every service running; returns how long that took (ms). */
async function allRunning(child: ChildProcess, stateDir: string): Promise<number> {
  const socket = { kind: 'unix' as const, path: path.join(stateDir, 'admin.sock') };
  const t0 = performance.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the agent exited with ${child.exitCode} before the services were ready`);
    const status = await adminGet(socket, '/status', 2_000).then((a) => JSON.parse(a.body) as AdminStatus).catch(() => undefined);
    if (status && status.services.filter((s) => s.state === 'running').length === SERVICES) return performance.now() - t0;
    if (performance.now() - t0 > 180_000) throw new Error('services not all running within 180 s');
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Waits until every service runs, samples RSS and CPU, then SIGTERMs the agent (exit code checked). */
async function measure(child: ChildProcess, stateDir: string, label: string): Promise<BenchResult[]> {
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the agent');
  const readyMs = await allRunning(child, stateDir);
  await new Promise((r) => setTimeout(r, 3_000)); // let the start-up garbage go
  const rss: number[] = [];
  const cpu0 = await processCpuSeconds(pid);
  const w0 = performance.now();
  for (let s = 0; s < SAMPLE_SECONDS; s++) {
    await new Promise((r) => setTimeout(r, 1_000));
    rss.push(rssKiB(pid, await readFile(`/proc/${pid}/status`, 'utf8')) / 1024);
  }
  const cpuPercent = (((await processCpuSeconds(pid)) - cpu0) / ((performance.now() - w0) / 1000)) * 100;
  child.kill('SIGTERM');
  const code = await exited(child);
  const meanRss = rss.reduce((a, b) => a + b, 0) / rss.length;
  const maxRss = Math.max(...rss);
  const row = (name: string, unit: string, value: number, target: string, met: boolean): BenchResult => ({ name: `idle (${label}): ${name}`, unit, value, baseline: undefined, ratio: undefined, target, met });
  return [
    row(`${SERVICES} services → all running`, 's', readyMs / 1000, 'report', true),
    row(`RSS, mean of ${SAMPLE_SECONDS} s with ${SERVICES} services`, 'MB', meanRss, `<= ${RSS_GOAL_MB} MB`, meanRss <= RSS_GOAL_MB),
    row('RSS, max', 'MB', maxRss, `<= ${RSS_GOAL_MB} MB`, maxRss <= RSS_GOAL_MB),
    row(`CPU over ${SAMPLE_SECONDS} s (probes every 5 s, resync every 30 s)`, '% of a core', cpuPercent, 'report', true),
    row('SIGTERM → exit code (containers keep running)', 'code', code ?? -1, '0', code === 0),
  ];
}
