import { auth, setup } from './proxy-rig.js';
import { spread } from './ab-baseline.js';
import { SCALE_STREAMS, scaleSteps, type StreamStep } from './sse-scale.js';

/**
 * What one more open SSE stream costs, beside the scale row: on a fresh rig per round, sshd and
 * then the agent go from idle to SCALE_STREAMS open streams (the full bench's scale row, which
 * spreads sizes of the process over its streams: the young generation grown to its bound, the
 * code compiled on first use) and on to twice as many, the first ones still open (RSS per added
 * stream). The young generation's share is the agent's /metrics at the same readings.
 *
 *   npm run bench -- none && node dist-bench/bench/sse-added.js [rounds]
 */
const rounds = Number(process.argv[2] ?? 3);
const rows = { sshdFirst: [] as number[], sshdAdded: [] as number[], agentFirst: [] as number[], agentAdded: [] as number[] };
const kib = (x: number) => x.toFixed(1);
const show = (s: StreamStep) => `${kib(s.rss)} KiB${s.young === undefined ? '' : ` (young generation ${kib(s.young)})`}`;

for (let round = 1; round <= rounds; round++) {
  const rig = await setup();
  try {
    const { sshd, agent } = await scaleSteps(rig, auth);
    rows.sshdFirst.push(sshd.first.rss);
    rows.sshdAdded.push(sshd.added.rss);
    rows.agentFirst.push(agent.first.rss);
    rows.agentAdded.push(agent.added.rss);
    process.stdout.write(
      `round ${round}, RSS per open stream, idle → ${SCALE_STREAMS} and ${SCALE_STREAMS} → ${2 * SCALE_STREAMS}: ` +
        `agent ${show(agent.first)}, then ${show(agent.added)}; sshd ${show(sshd.first)}, then ${show(sshd.added)}\n`,
    );
  } finally {
    await rig.cleanup();
  }
}
process.stdout.write(`agent, idle → ${SCALE_STREAMS} (the scale row): ${spread(rows.agentFirst, kib)} KiB; ${SCALE_STREAMS} → ${2 * SCALE_STREAMS}: ${spread(rows.agentAdded, kib)} KiB\n`);
process.stdout.write(`sshd, idle → ${SCALE_STREAMS}: ${spread(rows.sshdFirst, kib)} KiB; ${SCALE_STREAMS} → ${2 * SCALE_STREAMS}: ${spread(rows.sshdAdded, kib)} KiB\n`);
