import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { dockerAvailable, removeTestNetwork } from '../test/helpers/docker.js';
import { inspect, listByLabel, sweepByLabel } from '../test/helpers/engine.js';
import { ensureNodeTestImage } from '../test/helpers/node-image.js';
import { REPO_ROOT } from '../test/helpers/repo-root.js';
import { containerCpuSeconds, processCpuSeconds } from './process-cpu.js';
import { BULK_BYTES, SMALL_SECONDS, quantile, type Measure } from './proxy-client.js';
import type { Benchmark, BenchResult } from './types.js';

const SK = 'sk-bench-proxy-kkkkkkkkkkkk';
const AK = 'ak-bench-proxy-kkkkkkkkkkkk';
const auth = { authorization: `Bearer ${SK}` };
const CONCURRENCY = 16;
/** Each measurement runs this often, direct and tunnel alternating; the median is reported. */
const ROUNDS = 3;
/** The built CLI (npm run bench builds dist/ first). */
const BIN = path.join(REPO_ROOT, 'bin', 'cyberun-agent.js');

/** Runs one measurement in a worker thread (bench/proxy-client.ts). */
function measure<T>(kind: Measure, url: string, headers: Record<string, string>): Promise<T> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./proxy-client.js', import.meta.url), { workerData: { kind, url, headers } });
    worker.once('message', (v: T) => resolve(v));
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new Error(`bench client exited with ${code}`)));
  });
}

/** The NODE_OPTIONS the systemd unit runs the agent with, so the agent is measured as deployed. */
async function deployedNodeOptions(): Promise<string> {
  const unit = await readFile(path.join(REPO_ROOT, 'deploy', 'systemd', 'cyberun-agent.service'), 'utf8');
  return /^Environment=NODE_OPTIONS=(.*)$/m.exec(unit)?.[1]?.trim() ?? '';
}

/** Starts `cyberun-agent gateway --port 0` and reads its URLs from the line it prints. */
async function spawnGateway(dataDir: string): Promise<{ child: ChildProcess; url: string; agentUrl: string }> {
  const child = spawn(process.execPath, [BIN, 'gateway', '--port', '0', '--data-dir', dataDir], {
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', CYBERUN_GATEWAY_API_KEYS: SK, CYBERUN_GATEWAY_AGENT_KEYS: AK },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      err += String(chunk);
      const m = /REST API at (\S+)\/api\/v1, agents connect to (\S+)/.exec(err);
      if (m?.[1] && m[2]) resolve({ child, url: m[1], agentUrl: m[2] });
    });
    child.once('exit', (code) => reject(new Error(`the gateway exited with ${code}: ${err}`)));
  });
}

interface Rig {
  direct: string;
  tunnel: string;
  /** The same service behind bench/min-proxy.ts (the floor of any Node proxy on this machine). */
  minProxy: string;
  minProxyPid: number;
  /** Processes whose CPU time is the tunnel's cost. */
  pids: { gateway: number; agent: number };
  containerId: string;
  cleanup(): Promise<void>;
}

/**
 * Gateway and agent each run as their own process, as deployed (the agent with the unit's
 * NODE_OPTIONS); this process only drives load, from worker threads. The service is the node test
 * image, measured directly at its container address and through gateway → ws → agent.
 */
async function setup(): Promise<Rig> {
  await ensureNodeTestImage();
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'cyberun-bench-proxy-'));
  const network = `cyberun-bench-proxy-${process.pid}`;
  const agentId = `bench-proxy-${process.pid}`;
  // A slug of its own per run: container names derive from it, and a killed earlier run may have left one.
  const slug = `bench-proxy-${process.pid}`;
  const gateway = await spawnGateway(path.join(stateDir, 'gateway'));
  const extraArgs = (process.env['CYBERUN_BENCH_AGENT_NODE_ARGS'] ?? '').split(' ').filter(Boolean); // e.g. --cpu-prof
  const agent = spawn(process.execPath, [...extraArgs, BIN, 'run', '--state-dir', path.join(stateDir, 'agent'), '--agent-id', agentId, '--gateway-url', gateway.agentUrl,
    '--set', `docker.network=${network}`, '--set', 'docker.addressing=ip', '--log-level', 'warn'], {
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', CYBERUN_AGENT_KEY: AK, NODE_OPTIONS: await deployedNodeOptions() },
    cwd: stateDir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const stop = async (child: ChildProcess): Promise<void> => {
    child.kill('SIGTERM');
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
  };
  const api = async (method: string, p: string, body?: unknown) => {
    const res = await request(`${gateway.url}/api/v1${p}`, { method: method as 'GET', headers: { ...auth, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return (await res.body.json()) as Record<string, unknown>;
  };
  const { id } = (await api('POST', '/containers', { service_slug: slug, display_name: 'bench', docker_image: 'cyberun-test/node-http:1' })) as { id: string };
  await api('POST', `/containers/${id}/deploy`);
  const deadline = Date.now() + 60_000;
  while ((await api('GET', `/r/containers/${slug}`))['service_status'] !== 'running') {
    if (Date.now() > deadline) throw new Error(`${slug} did not become running`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const [containerId] = await listByLabel(`cloud.cyberun.service-id=${id}`);
  const ip = containerId === undefined ? undefined : (await inspect(containerId))?.NetworkSettings.Networks[network]?.IPAddress;
  if (containerId === undefined || ip === undefined) throw new Error('no ready replica to measure directly');
  const minProxy = spawn(process.execPath, [fileURLToPath(new URL('./min-proxy.js', import.meta.url)), `http://${ip}:8080`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const minPort = await new Promise<string>((resolve, reject) => {
    minProxy.stdout?.once('data', (chunk: Buffer) => resolve(String(chunk).trim()));
    minProxy.once('exit', (code) => reject(new Error(`min-proxy exited with ${code}`)));
  });
  return {
    minProxy: `http://127.0.0.1:${minPort}`,
    minProxyPid: minProxy.pid ?? 0,
    direct: `http://${ip}:8080`,
    tunnel: `${gateway.url}/api/v1/r/containers/${slug}`,
    pids: { gateway: gateway.child.pid ?? 0, agent: agent.pid ?? 0 },
    containerId,
    async cleanup() {
      await stop(minProxy);
      await stop(agent);
      await stop(gateway.child);
      await sweepByLabel(`cloud.cyberun.agent-id=${agentId}`);
      await removeTestNetwork(network);
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

const median = (xs: number[]): number => quantile(xs, 0.5);

export const proxyBenchmark: Benchmark = {
  name: 'proxy',
  async available() {
    return (await dockerAvailable()) ? true : 'no Docker Engine at /var/run/docker.sock';
  },
  async run(): Promise<BenchResult[]> {
    const rig = await setup();
    try {
      const t = (p: string): [string, Record<string, string>] => [`${rig.tunnel}${p}`, auth];
      const d = (p: string): [string, Record<string, string>] => [`${rig.direct}${p}`, {}];
      /** CPU seconds of gateway + agent, and of the container, while `fn` runs. */
      const cpuDuring = async <T>(fn: () => Promise<T>): Promise<{ result: T; proxy: number; service: number }> => {
        const cpu = async () => ({ proxy: (await processCpuSeconds(rig.pids.gateway)) + (await processCpuSeconds(rig.pids.agent)), service: await containerCpuSeconds(rig.containerId) });
        const before = await cpu();
        const result = await fn();
        const after = await cpu();
        return { result, proxy: after.proxy - before.proxy, service: after.service - before.service };
      };
      // Steady state is what a long-running agent sees: one untimed pass of every measurement
      // first (JIT, connection pools, and V8 sizing its young generation to the traffic).
      process.stdout.write('  warming up…\n');
      for (const route of [t, d]) {
        await measure<number>('throughput', ...route('/health'));
        await measure<number>('bulk', ...route('/bytes'));
        await measure<number>('firstEvent', ...route('/sse'));
      }
      const m = (p: string): [string, Record<string, string>] => [`${rig.minProxy}${p}`, {}];
      await measure<number>('throughput', ...m('/health'));
      const rps = { direct: [] as number[], tunnel: [] as number[], minProxy: [] as number[] };
      const cpuPerRequest = { proxy: [] as number[], service: [] as number[], minProxy: [] as number[] };
      const p50 = { direct: [] as number[], tunnel: [] as number[] };
      const p99 = { direct: [] as number[], tunnel: [] as number[] };
      const bulk = { direct: [] as number[], tunnel: [] as number[] };
      const sse = { direct: [] as number[], tunnel: [] as number[] };
      for (let round = 1; round <= ROUNDS; round++) {
        process.stdout.write(`  round ${round}/${ROUNDS}: throughput (direct, tunnel, minimal proxy), latency, bulk, SSE…\n`);
        rps.direct.push(await measure<number>('throughput', ...d('/health')));
        const tunnelRun = await cpuDuring(() => measure<number>('throughput', ...t('/health')));
        rps.tunnel.push(tunnelRun.result);
        const requests = tunnelRun.result * SMALL_SECONDS;
        cpuPerRequest.proxy.push((tunnelRun.proxy / requests) * 1e6);
        cpuPerRequest.service.push((tunnelRun.service / requests) * 1e6);
        const cpu0 = await processCpuSeconds(rig.minProxyPid);
        rps.minProxy.push(await measure<number>('throughput', ...m('/health')));
        cpuPerRequest.minProxy.push((((await processCpuSeconds(rig.minProxyPid)) - cpu0) / (rps.minProxy.at(-1)! * SMALL_SECONDS)) * 1e6);
        for (const [route, into] of [[d, 'direct'], [t, 'tunnel']] as const) {
          const lat = await measure<number[]>('latencies', ...route('/health'));
          p50[into].push(quantile(lat, 0.5));
          p99[into].push(quantile(lat, 0.99));
          bulk[into].push(await measure<number>('bulk', ...route('/bytes')));
          sse[into].push(await measure<number>('firstEvent', ...route('/sse')));
        }
      }
      const r = (x: number) => Math.round(x * 1000) / 1000;
      const throughputRatio = median(rps.tunnel) / median(rps.direct);
      const p50Added = median(p50.tunnel) - median(p50.direct);
      const p99Added = median(p99.tunnel) - median(p99.direct);
      const sseAdded = median(sse.tunnel) - median(sse.direct);
      const cpuRatio = median(cpuPerRequest.proxy) / median(cpuPerRequest.service);
      return [
        { name: `proxy: small GET throughput, ${CONCURRENCY} clients (tunnel vs direct)`, unit: 'req/s', value: Math.round(median(rps.tunnel)), baseline: Math.round(median(rps.direct)), ratio: throughputRatio, target: 'ratio >= 0.5', met: throughputRatio >= 0.5 },
        { name: 'proxy: reference, a minimal one-process Node proxy vs direct', unit: 'req/s', value: Math.round(median(rps.minProxy)), baseline: Math.round(median(rps.direct)), ratio: median(rps.minProxy) / median(rps.direct), target: '(reported: the ceiling here)', met: true },
        { name: 'proxy: CPU per small request, gateway + agent vs the service', unit: 'µs', value: Math.round(median(cpuPerRequest.proxy)), baseline: Math.round(median(cpuPerRequest.service)), ratio: cpuRatio, target: '(reported)', met: true },
        { name: 'proxy: CPU per small request, gateway + agent vs the minimal proxy', unit: 'µs', value: Math.round(median(cpuPerRequest.proxy)), baseline: Math.round(median(cpuPerRequest.minProxy)), ratio: median(cpuPerRequest.proxy) / median(cpuPerRequest.minProxy), target: '(reported)', met: true },
        { name: 'proxy: small GET p50 latency added by the tunnel', unit: 'ms', value: r(median(p50.tunnel)), baseline: r(median(p50.direct)), ratio: r(p50Added), target: 'added <= 1 ms', met: p50Added <= 1 },
        { name: 'proxy: small GET p99 latency added by the tunnel', unit: 'ms', value: r(median(p99.tunnel)), baseline: r(median(p99.direct)), ratio: r(p99Added), target: '(reported)', met: true },
        { name: `proxy: bulk download ${BULK_BYTES / 2 ** 20} MiB through the tunnel`, unit: 'MB/s', value: Math.round(median(bulk.tunnel)), baseline: Math.round(median(bulk.direct)), ratio: median(bulk.tunnel) / median(bulk.direct), target: 'value >= 300 MB/s', met: median(bulk.tunnel) >= 300 },
        { name: 'proxy: SSE time to first event added', unit: 'ms', value: r(median(sse.tunnel)), baseline: r(median(sse.direct)), ratio: r(sseAdded), target: 'added <= 2 ms', met: sseAdded <= 2 },
      ];
    } finally {
      await rig.cleanup();
    }
  },
};
