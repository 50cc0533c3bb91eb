import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { request } from 'undici';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startGateway, type Gateway } from '../src/gateway/gateway-server.js';
import { silentLogger } from '../src/log.js';
import { dockerAvailable, removeTestNetwork } from '../test/helpers/docker.js';
import { inspect, listByLabel, sweepByLabel } from '../test/helpers/engine.js';
import { ensureNodeTestImage } from '../test/helpers/node-image.js';
import { BULK_BYTES, quantile, type Measure } from './proxy-client.js';
import type { Benchmark, BenchResult } from './types.js';

const SK = 'sk-bench-proxy';
const AK = 'ak-bench-proxy';
const auth = { authorization: `Bearer ${SK}` };
const CONCURRENCY = 16;
/** The built CLI (npm run bench builds dist/ first). */
const BIN = fileURLToPath(new URL('../../bin/cyberun-agent.js', import.meta.url));

/** Runs one measurement in a worker thread (bench/proxy-client.ts). */
function measure<T>(kind: Measure, url: string, headers: Record<string, string>): Promise<T> {
  process.stdout.write(`  ${kind} ${url.startsWith('http://127.') ? 'through the tunnel' : 'direct'}…\n`);
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./proxy-client.js', import.meta.url), { workerData: { kind, url, headers } });
    worker.once('message', (v: T) => resolve(v));
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new Error(`bench client exited with ${code}`)));
  });
}

async function setup(): Promise<{ gateway: Gateway; direct: string; tunnel: string; cleanup: () => Promise<void> }> {
  await ensureNodeTestImage();
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'cyberun-bench-proxy-'));
  const network = `cyberun-bench-proxy-${process.pid}`;
  const agentId = `bench-proxy-${process.pid}`;
  // A slug of its own per run: container names derive from it, and a killed earlier run may have left one.
  const slug = `bench-proxy-${process.pid}`;
  const gateway = await startGateway({ port: 0, dataDir: path.join(stateDir, 'gateway'), apiKeys: [SK], agentKeys: [AK], logger: silentLogger(), heartbeatIntervalMs: 500 });
  // The agent runs as its own process, as deployed: gateway and agent never share an event loop.
  const nodeArgs = (process.env['CYBERUN_BENCH_AGENT_NODE_ARGS'] ?? '').split(' ').filter(Boolean); // e.g. --cpu-prof
  const agent = spawn(process.execPath, [...nodeArgs, BIN, 'run', '--state-dir', path.join(stateDir, 'agent'), '--agent-id', agentId, '--gateway-url', gateway.agentUrl,
    '--set', `docker.network=${network}`, '--set', 'docker.addressing=ip', '--log-level', 'warn'], {
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', CYBERUN_AGENT_KEY: AK },
    cwd: stateDir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
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
  if (ip === undefined) throw new Error('no ready replica to measure directly');
  return {
    gateway,
    direct: `http://${ip}:8080`,
    tunnel: `${gateway.url}/api/v1/r/containers/${slug}`,
    async cleanup() {
      agent.kill('SIGTERM');
      if (agent.exitCode === null) await new Promise((r) => agent.once('exit', r));
      await gateway.close();
      await sweepByLabel(`cloud.cyberun.agent-id=${agentId}`);
      await removeTestNetwork(network);
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

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
      await measure<number>('throughput', ...t('/health')); // warm-up
      await measure<number>('throughput', ...d('/health'));
      const rpsDirect = await measure<number>('throughput', ...d('/health'));
      const rpsTunnel = await measure<number>('throughput', ...t('/health'));
      const latDirect = await measure<number[]>('latencies', ...d('/health'));
      const latTunnel = await measure<number[]>('latencies', ...t('/health'));
      const bulkDirect = await measure<number>('bulk', ...d('/bytes'));
      const bulkTunnel = await measure<number>('bulk', ...t('/bytes'));
      const sseDirect = await measure<number>('firstEvent', ...d('/sse'));
      const sseTunnel = await measure<number>('firstEvent', ...t('/sse'));
      const p50Added = quantile(latTunnel, 0.5) - quantile(latDirect, 0.5);
      const p99Added = quantile(latTunnel, 0.99) - quantile(latDirect, 0.99);
      const r = (x: number) => Math.round(x * 1000) / 1000;
      return [
        { name: `proxy: small GET throughput, ${CONCURRENCY} clients (tunnel vs direct)`, unit: 'req/s', value: Math.round(rpsTunnel), baseline: Math.round(rpsDirect), ratio: rpsTunnel / rpsDirect, target: 'ratio >= 0.5', met: rpsTunnel / rpsDirect >= 0.5 },
        { name: 'proxy: small GET p50 latency added by the tunnel', unit: 'ms', value: r(quantile(latTunnel, 0.5)), baseline: r(quantile(latDirect, 0.5)), ratio: r(p50Added), target: 'added <= 1 ms', met: p50Added <= 1 },
        { name: 'proxy: small GET p99 latency added by the tunnel', unit: 'ms', value: r(quantile(latTunnel, 0.99)), baseline: r(quantile(latDirect, 0.99)), ratio: r(p99Added), target: '(reported)', met: true },
        { name: `proxy: bulk download ${BULK_BYTES / 2 ** 20} MiB through the tunnel`, unit: 'MB/s', value: Math.round(bulkTunnel), baseline: Math.round(bulkDirect), ratio: bulkTunnel / bulkDirect, target: 'value >= 300 MB/s', met: bulkTunnel >= 300 },
        { name: 'proxy: SSE time to first event added', unit: 'ms', value: r(sseTunnel), baseline: r(sseDirect), ratio: r(sseTunnel - sseDirect), target: 'added <= 2 ms', met: sseTunnel - sseDirect <= 2 },
      ];
    } finally {
      await rig.cleanup();
    }
  },
};
