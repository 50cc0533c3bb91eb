import { processCpuSeconds } from './process-cpu.js';
import { CONCURRENCY, SMALL_SECONDS } from './proxy-client.js';
import { auth, measure, setup } from './proxy-rig.js';

/**
 * Small-GET load through the tunnel only, for profiling the data path:
 *   CYBERUN_BENCH_AGENT_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' \
 *   CYBERUN_BENCH_GATEWAY_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' \
 *   node dist-bench/bench/proxy-load.js [rounds]
 * (after `npm run bench -- none` built it). Prints req/s per round; the profiles are written when
 * the rig stops the processes.
 */
const rounds = Number(process.argv[2] ?? 5);
const rig = await setup();
try {
  for (let i = 0; i < rounds; i++) {
    const cpu = async () => [await processCpuSeconds(rig.pids.gateway), await processCpuSeconds(rig.pids.agent)] as const;
    const [g0, a0] = await cpu();
    const rps = await measure<number>('throughput', `${rig.tunnel}/health`, auth);
    const [g1, a1] = await cpu();
    const us = (s: number) => Math.round((s / (rps * SMALL_SECONDS)) * 1e6);
    process.stdout.write(`round ${i + 1}: ${Math.round(rps)} req/s through the tunnel, ${CONCURRENCY} clients; CPU per request: gateway ${us(g1 - g0)} µs, agent ${us(a1 - a0)} µs\n`);
  }
} finally {
  await rig.cleanup();
}
