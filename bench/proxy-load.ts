import { CONCURRENCY } from './proxy-client.js';
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
    const rps = await measure<number>('throughput', `${rig.tunnel}/health`, auth);
    process.stdout.write(`round ${i + 1}: ${Math.round(rps)} req/s through the tunnel, ${CONCURRENCY} clients\n`);
  }
} finally {
  await rig.cleanup();
}
