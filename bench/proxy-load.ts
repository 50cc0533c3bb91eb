import type { GcTotals } from './gc-probe.js';
import { processCpuSeconds, voluntarySwitches } from './process-cpu.js';
import { CONCURRENCY, SMALL_SECONDS } from './proxy-client.js';
import { auth, measure, oneByOne, setup } from './proxy-rig.js';
import { rssKiB } from './sse-scale.js';

/**
 * Small-GET load through the tunnel only, for profiling the data path:
 *   CYBERUN_BENCH_AGENT_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' \
 *   CYBERUN_BENCH_GATEWAY_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' \
 *   node dist-bench/bench/proxy-load.js [rounds] [sequential] [gc]
 * (after `npm run bench -- none` built it). Each round prints req/s, the gateway's and agent's
 * CPU per request, and how often each process slept and was woken per request (voluntary context
 * switches of all its threads): CONCURRENCY clients for SMALL_SECONDS, or with `sequential` 1,000
 * requests one after another (the cost of a request that wakes both processes alone). With `gc`
 * both processes run with bench/gc-probe.ts, and each round adds, per 1,000 requests, their
 * scavenges, their full GCs (mark-compacts, incremental marking) and the milliseconds their GC
 * paused them. Each round ends with the agent's RSS. The profiles are written when the rig stops
 * the processes.
 */
const rounds = Number(process.argv[2] ?? 5);
const flags = new Set(process.argv.slice(3));
const sequential = flags.has('sequential');
const gc = flags.has('gc');
const rig = await setup({ gcProbe: gc });
const url = `${rig.tunnel}/health`;

/** Scavenges, mark-compacts and GC pause between two totals, per 1,000 requests. */
function gcPer1k(before: GcTotals, after: GcTotals, requests: number): string {
  const per1k = (n: number) => (n / requests) * 1000;
  const minor = per1k(after.minor - before.minor);
  const major = per1k(after.major - before.major);
  const ms = per1k(after.minorMs - before.minorMs + after.majorMs - before.majorMs);
  return `${minor.toFixed(1)} scavenges, ${major.toFixed(2)} full GCs, ${ms.toFixed(1)} ms GC`;
}

try {
  for (let i = 0; i < rounds; i++) {
    const cpu = async () => [await processCpuSeconds(rig.pids.gateway), await processCpuSeconds(rig.pids.agent)] as const;
    const wakes = async () => [await voluntarySwitches(rig.pids.gateway), await voluntarySwitches(rig.pids.agent)] as const;
    const gc0 = gc ? await rig.gcTotals() : undefined;
    const [w0g, w0a] = await wakes();
    const [g0, a0] = await cpu();
    const rps = sequential ? 1000 / (await oneByOne(url, auth, 1000)) : await measure<number>('throughput', url, auth);
    const [g1, a1] = await cpu();
    const [w1g, w1a] = await wakes();
    const gc1 = gc ? await rig.gcTotals() : undefined;
    const requests = sequential ? 1000 : rps * SMALL_SECONDS;
    const us = (s: number) => Math.round((s / requests) * 1e6);
    const clients = sequential ? '1 client' : `${CONCURRENCY} clients`;
    process.stdout.write(`round ${i + 1}: ${Math.round(rps)} req/s${sequential ? ` (${(1000 / rps).toFixed(3)} ms each)` : ''} through the tunnel, ${clients}; CPU per request: gateway ${us(g1 - g0)} µs, agent ${us(a1 - a0)} µs; wake-ups per request: gateway ${((w1g - w0g) / requests).toFixed(2)}, agent ${((w1a - w0a) / requests).toFixed(2)}${gc0 && gc1 ? `; per 1,000 requests: gateway ${gcPer1k(gc0.gateway, gc1.gateway, requests)}, agent ${gcPer1k(gc0.agent, gc1.agent, requests)}` : ''}; agent RSS ${((await rssKiB(rig.pids.agent)) / 1024).toFixed(1)} MB\n`);
  }
} finally {
  await rig.cleanup();
}
