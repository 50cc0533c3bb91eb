import { baselineModule, inRoundOrder, spread, type RigModule } from './ab-baseline.js';
import { liveHeapPerOpenStream, type HeapSummary } from './heap-snapshot.js';
import * as own from './proxy-rig.js';
import { SCALE_STREAMS } from './sse-scale.js';

/**
 * The agent's live JS heap per open SSE stream (bench/heap-snapshot.ts), this checkout and
 * optionally a baseline checkout's, on fresh rigs:
 *
 *   npm run bench -- none && node dist-bench/bench/sse-heap.js [rounds] [baseline checkout]
 *
 * Each round starts a fresh rig per side (the agent with `--heapsnapshot-signal=SIGUSR2`),
 * alternating with a baseline (built with `npm run bench -- none`). Prints each reading, each
 * side's range, and the kinds of object that grew most per stream in this checkout's last round.
 * With `added` (in place of the baseline: `sse-heap.js [rounds] added`), this checkout alone, and
 * a third snapshot with twice as many streams open: the live heap per added stream, and what grew
 * per added stream, without the code compiled on first use.
 */
const rounds = Number(process.argv[2] ?? 1);
const added = process.argv[3] === 'added';
const baseRoot = added ? undefined : process.argv[3];

const variants = [
  ...(baseRoot === undefined ? [] : [{ name: 'baseline', rig: await baselineModule<RigModule>(baseRoot, 'proxy-rig.js'), kib: [] as number[] }]),
  { name: 'this checkout', rig: own as RigModule, kib: [] as number[] },
];
let last: { idle: HeapSummary; open: HeapSummary; twice?: HeapSummary } | undefined;
const addedKib: number[] = [];
for (let round = 1; round <= rounds; round++) {
  for (const v of inRoundOrder(variants, round)) {
    const m = await liveHeapPerOpenStream(v.rig, { added });
    v.kib.push(m.perStream);
    if (v.rig === own) last = m;
    const mib = (h: HeapSummary) => (h.bytes / 2 ** 20).toFixed(1);
    const then = m.twice === undefined || m.addedPerStream === undefined ? '' : `; ${mib(m.twice)} MiB with ${2 * SCALE_STREAMS}: ${m.addedPerStream.toFixed(2)} KiB per added stream`;
    if (m.addedPerStream !== undefined) addedKib.push(m.addedPerStream);
    process.stdout.write(`round ${round} ${v.name}: live heap ${mib(m.idle)} MiB idle, ${mib(m.open)} MiB with ${SCALE_STREAMS} open: ${m.perStream.toFixed(2)} KiB per open stream${then}\n`);
  }
}
for (const v of variants) process.stdout.write(`${v.name}: ${spread(v.kib, (x) => x.toFixed(2))} KiB of live heap per open stream\n`);
if (addedKib.length > 0) process.stdout.write(`this checkout: ${spread(addedKib, (x) => x.toFixed(2))} KiB of live heap per added stream (${SCALE_STREAMS} → ${2 * SCALE_STREAMS})\n`);

/** The kinds of object that grew most per stream from one snapshot to the next. */
function printGrown(title: string, from: HeapSummary, to: HeapSummary): void {
  const grown = [...to.kinds].map(([kind, k]) => {
    const was = from.kinds.get(kind) ?? { bytes: 0, count: 0 };
    return { kind, bytes: (k.bytes - was.bytes) / SCALE_STREAMS, count: (k.count - was.count) / SCALE_STREAMS };
  });
  process.stdout.write(`${title}:\n`);
  for (const g of grown.sort((a, b) => b.bytes - a.bytes).slice(0, 15)) process.stdout.write(`  ${g.bytes.toFixed(0).padStart(6)} B in ${g.count.toFixed(2).padStart(5)} × ${g.kind}\n`);
}

if (last !== undefined) {
  printGrown('grew most per open stream (this checkout, last round)', last.idle, last.open);
  if (last.twice !== undefined) printGrown(`grew most per added stream, ${SCALE_STREAMS} → ${2 * SCALE_STREAMS} (this checkout, last round)`, last.open, last.twice);
}
