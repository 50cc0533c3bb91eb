import { baselineModule, baselineRoot, inRoundOrder, spread, type RigModule } from './ab-baseline.js';
import * as own from './proxy-rig.js';
import * as ownScale from './sse-scale.js';

/**
 * A/B of the scale row: agent RSS per open SSE stream with SCALE_STREAMS held open, this checkout
 * against a baseline checkout. The row is measured on a fresh agent, so each round starts a fresh
 * rig per side (baseline first, then this checkout, alternating) and prints both; the summary gives
 * each side's range and median:
 *
 *   npm run bench -- none && node dist-bench/bench/scale-ab.js /tmp/base [rounds]
 *
 * (the baseline built with `npm run bench -- none`, as for proxy-ab.js). The full bench's single
 * reading moves by several KiB from run to run with the same code; this resolves a change to it.
 */
const baseRoot = baselineRoot('scale-ab.js');
const rounds = Number(process.argv[3] ?? 3);

type ScaleModule = Pick<typeof ownScale, 'rssPerOpenStream'>;
const variants = [
  { name: 'baseline', rig: await baselineModule<RigModule>(baseRoot, 'proxy-rig.js'), scale: await baselineModule<ScaleModule>(baseRoot, 'sse-scale.js'), kib: [] as number[] },
  { name: 'this checkout', rig: own as RigModule, scale: ownScale as ScaleModule, kib: [] as number[] },
];

for (let round = 1; round <= rounds; round++) {
  for (const v of inRoundOrder(variants, round)) {
    const rig = await v.rig.setup();
    try {
      const kib = await v.scale.rssPerOpenStream(`${rig.tunnel}/sse`, v.rig.auth, async () => [rig.pids.agent]);
      v.kib.push(kib);
      process.stdout.write(`round ${round} ${v.name}: ${kib.toFixed(1)} KiB agent RSS per open stream\n`);
    } finally {
      await rig.cleanup();
    }
  }
}
for (const v of variants) {
  process.stdout.write(`${v.name}: ${spread(v.kib, (x) => x.toFixed(1))} KiB per open stream\n`);
}
