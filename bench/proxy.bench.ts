import { dockerAvailable } from '../test/helpers/docker.js';
import { containerCpuSeconds, processesCpuSeconds } from './process-cpu.js';
import { BULK_BYTES, CONCURRENCY, LATENCY_CONCURRENCY, SMALL_SECONDS, quantile } from './proxy-client.js';
import { auth, measure, setup, type Rig } from './proxy-rig.js';
import { liveHeapPerOpenStream } from './heap-snapshot.js';
import { SCALE_STREAMS, scaleSteps } from './sse-scale.js';
import type { Benchmark, BenchResult } from './types.js';

/** Each measurement runs this often, direct, ssh -L and tunnel alternating; the median is reported. */
const ROUNDS = 3;

const median = (xs: number[]): number => quantile(xs, 0.5);
const r3 = (x: number) => Math.round(x * 1000) / 1000;

type Path = 'direct' | 'ssh' | 'tunnel';
const PATHS: Path[] = ['direct', 'ssh', 'tunnel'];
type Samples = Record<Path, number[]>;
const samples = (): Samples => ({ direct: [], ssh: [], tunnel: [] });
/**
 * Node.js references, throughput (and for the two floors the p50 at 4 clients): bench/min-proxy.ts
 * (one process), bench/min-tunnel.ts (the tunnel's two-process shape with its libraries and
 * nothing else: the floor of that shape) and bench/raw-tunnel.ts (that floor without ws and undici:
 * the floor of any two-process Node design with node:http in front).
 */
type Reference = 'minProxy' | 'minTunnel' | 'rawTunnel';
const REFERENCES: Reference[] = ['minProxy', 'minTunnel', 'rawTunnel'];
const references = (): Record<Reference, number[]> => ({ minProxy: [], minTunnel: [], rawTunnel: [] });


/** Runs every measurement ROUNDS times, the three paths alternating, and returns the samples. */
async function measureAll(rig: Rig) {
  const route = (p: Path | Reference, sub: string): [string, Record<string, string>] =>
    p === 'tunnel' ? [`${rig.tunnel}${sub}`, auth] : [`${{ direct: rig.direct, ssh: rig.ssh, minProxy: rig.minProxy, minTunnel: rig.minTunnel, rawTunnel: rig.rawTunnel }[p]}${sub}`, {}];
  const referencePids = { minProxy: [rig.minProxyPid], minTunnel: rig.minTunnelPids, rawTunnel: rig.rawTunnelPids };
  /** CPU seconds of the path's own processes (gateway + agent, or ssh + sshd) and of the container. */
  const cpuOf = async (p: Path): Promise<{ path: number; service: number }> => ({
    path: p === 'tunnel' ? await processesCpuSeconds([rig.pids.gateway, rig.pids.agent]) : p === 'ssh' ? await processesCpuSeconds(await rig.sshPids()) : 0,
    service: await containerCpuSeconds(rig.containerId),
  });
  // Steady state is what a long-running agent sees: one untimed pass of every measurement first
  // (JIT, connection pools — sshd forks per connection — and V8 sizing its young generation).
  process.stdout.write('  warming up…\n');
  for (const p of PATHS) {
    await measure<number>('throughput', ...route(p, '/health'));
    await measure<number>('bulk', ...route(p, '/bytes'));
    await measure<number>('firstEvent', ...route(p, '/sse'));
  }
  for (const r of REFERENCES) await measure<number>('throughput', ...route(r, '/health'));
  const s = { rps: samples(), cpu: samples(), serviceCpu: samples(), p50: samples(), p99: samples(), bulk: samples(), sse: samples(), refRps: references(), refCpu: references(), minTunnelP50: [] as number[], rawTunnelP50: [] as number[] };
  for (let round = 1; round <= ROUNDS; round++) {
    process.stdout.write(`  round ${round}/${ROUNDS}: throughput, latency, bulk, SSE (direct, ssh -L, tunnel alternating)…\n`);
    for (const p of PATHS) {
      const before = await cpuOf(p);
      const rps = await measure<number>('throughput', ...route(p, '/health'));
      const after = await cpuOf(p);
      const pathCpu = after.path - before.path;
      s.rps[p].push(rps);
      s.cpu[p].push((pathCpu / (rps * SMALL_SECONDS)) * 1e6);
      s.serviceCpu[p].push(((after.service - before.service) / (rps * SMALL_SECONDS)) * 1e6);
    }
    for (const r of REFERENCES) {
      const cpu0 = await processesCpuSeconds(referencePids[r]);
      const rps = await measure<number>('throughput', ...route(r, '/health'));
      s.refRps[r].push(rps);
      s.refCpu[r].push((((await processesCpuSeconds(referencePids[r])) - cpu0) / (rps * SMALL_SECONDS)) * 1e6);
    }
    for (const p of PATHS) {
      const lat = await measure<number[]>('latencies', ...route(p, '/health'));
      s.p50[p].push(quantile(lat, 0.5));
      s.p99[p].push(quantile(lat, 0.99));
    }
    // The floors for latency too: what two Node processes add at 4 clients, with and without ws and undici.
    s.minTunnelP50.push(quantile(await measure<number[]>('latencies', ...route('minTunnel', '/health')), 0.5));
    s.rawTunnelP50.push(quantile(await measure<number[]>('latencies', ...route('rawTunnel', '/health')), 0.5));
    for (const p of PATHS) s.bulk[p].push(await measure<number>('bulk', ...route(p, '/bytes')));
    for (const p of PATHS) s.sse[p].push(await measure<number>('firstEvent', ...route(p, '/sse')));
  }
  return s;
}

type AllSamples = Awaited<ReturnType<typeof measureAll>>;

/** The table rows: the tunnel against direct and against ssh -L, medians of the rounds. */
function rows(s: AllSamples): BenchResult[] {
  const m = (x: Samples) => ({ direct: median(x.direct), ssh: median(x.ssh), tunnel: median(x.tunnel) });
  const rps = m(s.rps);
  const cpu = m(s.cpu);
  const service = m(s.serviceCpu);
  const p50 = m(s.p50);
  const p99 = m(s.p99);
  const bulk = m(s.bulk);
  const sse = m(s.sse);
  const range = (xs: number[]) => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`;
  const added = (x: Record<Path, number>, p: 'ssh' | 'tunnel') => r3(x[p] - x.direct);
  const C = CONCURRENCY;
  const L = LATENCY_CONCURRENCY;
  return [
    { name: `proxy: small GET, ${C} clients, tunnel vs ssh -L (rounds: tunnel ${range(s.rps.tunnel)}, ssh ${range(s.rps.ssh)})`, unit: 'req/s', value: Math.round(rps.tunnel), baseline: Math.round(rps.ssh), ratio: rps.tunnel / rps.ssh, target: 'ratio >= 0.6 (then 1.0)', met: rps.tunnel / rps.ssh >= 0.6 },
    { name: `proxy: small GET, ${C} clients, tunnel vs direct (direct ${range(s.rps.direct)})`, unit: 'req/s', value: Math.round(rps.tunnel), baseline: Math.round(rps.direct), ratio: rps.tunnel / rps.direct, target: '(reported)', met: true },
    { name: `proxy: small GET, ${C} clients, ssh -L vs direct`, unit: 'req/s', value: Math.round(rps.ssh), baseline: Math.round(rps.direct), ratio: rps.ssh / rps.direct, target: '(reported: the peer)', met: true },
    { name: `proxy: small GET, ${C} clients, minimal one-process Node proxy vs direct`, unit: 'req/s', value: Math.round(median(s.refRps.minProxy)), baseline: Math.round(rps.direct), ratio: median(s.refRps.minProxy) / rps.direct, target: '(reported)', met: true },
    { name: `proxy: small GET, ${C} clients, minimal two-process Node tunnel vs ssh -L (rounds: ${range(s.refRps.minTunnel)})`, unit: 'req/s', value: Math.round(median(s.refRps.minTunnel)), baseline: Math.round(rps.ssh), ratio: median(s.refRps.minTunnel) / rps.ssh, target: '(reported: the floor of the shape)', met: true },
    { name: `proxy: small GET, ${C} clients, minimal tunnel without ws and undici vs ssh -L (rounds: ${range(s.refRps.rawTunnel)})`, unit: 'req/s', value: Math.round(median(s.refRps.rawTunnel)), baseline: Math.round(rps.ssh), ratio: median(s.refRps.rawTunnel) / rps.ssh, target: '(reported: the floor of a Node design with node:http in front)', met: true },
    { name: `proxy: small GET, ${C} clients, tunnel vs the minimal two-process Node tunnel`, unit: 'req/s', value: Math.round(rps.tunnel), baseline: Math.round(median(s.refRps.minTunnel)), ratio: rps.tunnel / median(s.refRps.minTunnel), target: '(reported)', met: true },
    { name: 'proxy: CPU per small request, gateway + agent vs ssh + sshd', unit: 'µs', value: Math.round(cpu.tunnel), baseline: Math.round(cpu.ssh), ratio: cpu.tunnel / cpu.ssh, target: '(reported)', met: true },
    { name: 'proxy: CPU per small request, gateway + agent vs the service', unit: 'µs', value: Math.round(cpu.tunnel), baseline: Math.round(service.tunnel), ratio: cpu.tunnel / service.tunnel, target: '(reported)', met: true },
    { name: 'proxy: CPU per small request, gateway + agent vs the minimal proxy', unit: 'µs', value: Math.round(cpu.tunnel), baseline: Math.round(median(s.refCpu.minProxy)), ratio: cpu.tunnel / median(s.refCpu.minProxy), target: '(reported)', met: true },
    { name: 'proxy: CPU per small request, gateway + agent vs the minimal two-process tunnel', unit: 'µs', value: Math.round(cpu.tunnel), baseline: Math.round(median(s.refCpu.minTunnel)), ratio: cpu.tunnel / median(s.refCpu.minTunnel), target: '(reported)', met: true },
    { name: `proxy: small GET p50 added, ${L} clients, tunnel (ratio: ms added; baseline: ssh -L's)`, unit: 'ms', value: r3(p50.tunnel), baseline: added(p50, 'ssh'), ratio: added(p50, 'tunnel'), target: 'added <= 0.5 ms', met: added(p50, 'tunnel') <= 0.5 },
    { name: `proxy: small GET p50 added, ${L} clients, minimal two-process Node tunnel (ratio: ms added; baseline: ssh -L's)`, unit: 'ms', value: r3(median(s.minTunnelP50)), baseline: added(p50, 'ssh'), ratio: r3(median(s.minTunnelP50) - p50.direct), target: '(reported: the floor of the shape)', met: true },
    { name: `proxy: small GET p50 added, ${L} clients, minimal tunnel without ws and undici (ratio: ms added; baseline: ssh -L's)`, unit: 'ms', value: r3(median(s.rawTunnelP50)), baseline: added(p50, 'ssh'), ratio: r3(median(s.rawTunnelP50) - p50.direct), target: '(reported: the floor of a Node design with node:http in front)', met: true },
    { name: `proxy: small GET p99 added, ${L} clients, tunnel (ratio: ms added; baseline: ssh -L's)`, unit: 'ms', value: r3(p99.tunnel), baseline: added(p99, 'ssh'), ratio: added(p99, 'tunnel'), target: '(reported)', met: true },
    { name: `proxy: bulk download ${BULK_BYTES / 2 ** 20} MiB, tunnel vs ssh -L (tunnel ${range(s.bulk.tunnel)}, ssh ${range(s.bulk.ssh)})`, unit: 'MB/s', value: Math.round(bulk.tunnel), baseline: Math.round(bulk.ssh), ratio: bulk.tunnel / bulk.ssh, target: 'ratio >= 1.0', met: bulk.tunnel / bulk.ssh >= 1 },
    { name: `proxy: bulk download ${BULK_BYTES / 2 ** 20} MiB, tunnel vs direct`, unit: 'MB/s', value: Math.round(bulk.tunnel), baseline: Math.round(bulk.direct), ratio: bulk.tunnel / bulk.direct, target: '(reported)', met: true },
    { name: 'proxy: SSE first event added, tunnel (ratio: ms added; baseline: ssh -L\'s)', unit: 'ms', value: r3(sse.tunnel), baseline: added(sse, 'ssh'), ratio: added(sse, 'tunnel'), target: 'added <= 1 ms', met: added(sse, 'tunnel') <= 1 },
  ];
}

export const proxyBenchmark: Benchmark = {
  name: 'proxy',
  async available() {
    return (await dockerAvailable()) ? true : 'no Docker Engine at /var/run/docker.sock';
  },
  async run(): Promise<BenchResult[]> {
    const rig = await setup();
    let table: BenchResult[];
    try {
      // The scale row first, while the agent has served nothing else: after the rounds (bulk
      // downloads grow and later shrink its heap) its RSS growth read below zero in some runs.
      process.stdout.write(`  scale: ${SCALE_STREAMS}, then ${2 * SCALE_STREAMS} SSE streams held open through ssh -L, then through the tunnel…\n`);
      const { sshd, agent } = await scaleSteps(rig, auth);
      const kib = (x: number | undefined) => Math.round((x ?? Number.NaN) * 10) / 10;
      table = rows(await measureAll(rig));
      table.push({ name: `proxy: agent RSS per open SSE stream, ${SCALE_STREAMS} held open by a fresh agent (baseline: sshd's per channel)`, unit: 'KiB', value: kib(agent.first.rss), baseline: kib(sshd.first.rss), ratio: agent.first.rss / sshd.first.rss, target: 'value <= 20 KiB', met: agent.first.rss <= 20 });
      table.push({ name: `proxy: of which the agent's young generation (V8's semi-spaces, grown to their bound; a size of the process, not of each stream)`, unit: 'KiB', value: kib(agent.first.young), baseline: undefined, ratio: undefined, target: '(reported)', met: true });
      table.push({ name: `proxy: agent RSS per added open SSE stream, ${SCALE_STREAMS} → ${2 * SCALE_STREAMS} (baseline: sshd's; young generation grown ${kib(agent.added.young)} KiB per stream)`, unit: 'KiB', value: kib(agent.added.rss), baseline: kib(sshd.added.rss), ratio: agent.added.rss / sshd.added.rss, target: '(reported: what one more open stream costs; the row above also spreads sizes of the process over its streams)', met: true });
    } finally {
      await rig.cleanup();
    }
    // The RSS row moves by many KiB with where the agent's heap is between GCs; what the streams
    // hold, read from heap snapshots of another fresh agent, does not (bench/heap-snapshot.ts).
    process.stdout.write(`  live heap: ${SCALE_STREAMS} SSE streams through a fresh agent, heap snapshots idle and with them open…\n`);
    try {
      const heap = await liveHeapPerOpenStream({ setup, auth });
      table.push({ name: `proxy: agent live JS heap per open SSE stream, ${SCALE_STREAMS} held open (heap snapshots of a fresh agent)`, unit: 'KiB', value: Math.round(heap.perStream * 100) / 100, baseline: undefined, ratio: undefined, target: '(reported: the RSS row without GC timing)', met: true });
    } catch (err) {
      // A reported row: its failure costs only itself, not the rows measured above.
      process.stdout.write(`  live heap: not measured: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    return table;
  },
};
