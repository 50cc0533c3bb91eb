import { Agent, request } from 'undici';
import { processCpuSeconds, voluntarySwitches } from './process-cpu.js';
import { CONCURRENCY, SMALL_SECONDS } from './proxy-client.js';
import { auth, measure, setup } from './proxy-rig.js';

/**
 * Small-GET load through the tunnel only, for profiling the data path:
 *   CYBERUN_BENCH_AGENT_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' \
 *   CYBERUN_BENCH_GATEWAY_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' \
 *   node dist-bench/bench/proxy-load.js [rounds] [sequential]
 * (after `npm run bench -- none` built it). Each round prints req/s, the gateway's and agent's
 * CPU per request, and how often each process slept and was woken per request (voluntary context
 * switches of all its threads): CONCURRENCY clients for SMALL_SECONDS, or with `sequential` 1,000
 * requests one after another (the cost of a request that wakes both processes alone). The
 * profiles are written when the rig stops the processes.
 */
const rounds = Number(process.argv[2] ?? 5);
const sequential = process.argv[3] === 'sequential';
const rig = await setup();
const url = `${rig.tunnel}/health`;

async function oneByOne(n: number): Promise<number> {
  const dispatcher = new Agent({ connections: 1 });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await (await request(url, { headers: auth, dispatcher })).body.text();
  await dispatcher.close();
  return n / ((performance.now() - t0) / 1000);
}

try {
  for (let i = 0; i < rounds; i++) {
    const cpu = async () => [await processCpuSeconds(rig.pids.gateway), await processCpuSeconds(rig.pids.agent)] as const;
    const wakes = async () => [await voluntarySwitches(rig.pids.gateway), await voluntarySwitches(rig.pids.agent)] as const;
    const [w0g, w0a] = await wakes();
    const [g0, a0] = await cpu();
    const rps = sequential ? await oneByOne(1000) : await measure<number>('throughput', url, auth);
    const [g1, a1] = await cpu();
    const [w1g, w1a] = await wakes();
    const requests = sequential ? 1000 : rps * SMALL_SECONDS;
    const us = (s: number) => Math.round((s / requests) * 1e6);
    const clients = sequential ? '1 client' : `${CONCURRENCY} clients`;
    process.stdout.write(`round ${i + 1}: ${Math.round(rps)} req/s${sequential ? ` (${(1000 / rps).toFixed(3)} ms each)` : ''} through the tunnel, ${clients}; CPU per request: gateway ${us(g1 - g0)} µs, agent ${us(a1 - a0)} µs; wake-ups per request: gateway ${((w1g - w0g) / requests).toFixed(2)}, agent ${((w1a - w0a) / requests).toFixed(2)}\n`);
  }
} finally {
  await rig.cleanup();
}
