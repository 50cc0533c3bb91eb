import { baselineModule, baselineRoot, inRoundOrder, spread, type RigModule as RigSetup } from './ab-baseline.js';
import { processCpuSeconds } from './process-cpu.js';
import { BULK_BYTES, CONCURRENCY, SMALL_SECONDS, SSE_SAMPLES } from './proxy-client.js';
import * as own from './proxy-rig.js';

/**
 * Paired A/B of the small-request data path: this checkout against a baseline checkout, both rigs
 * up at once, 64-client rounds alternating between them (ABBA order), so that a machine whose
 * speed drifts (a shared VM) slows both alike. Prints each round and the range and median of the
 * rounds after two warm-up rounds each, and the ratio of each round's pair (this checkout over the
 * baseline, run back to back):
 *
 *   git worktree add /tmp/base <commit> && (cd /tmp/base && npm ci && npm run bench -- none)
 *   npm run bench -- none && node dist-bench/bench/proxy-ab.js /tmp/base [rounds] [bulk|sse]
 *
 * With `bulk`, each round is one download of BULK_BYTES instead (MB/s, and each process's CPU
 * per MiB relayed). With `sse`, each round times SSE_SAMPLES streams' first events through the
 * tunnel and then directly, and reports the median's difference (ms the tunnel adds; lower is
 * better) and each process's CPU per stream.
 *
 * The baseline's own bench/proxy-rig.ts sets up its rig (its gateway, agent and replica).
 *
 * In place of a baseline checkout, `flags:<node flags>` (or `gateway-flags:…`, `agent-flags:…`)
 * pairs two rigs of this checkout, one whose gateway and agent (or only the one named) run with
 * those flags added to their command line, e.g. 'agent-flags:--max-semi-space-size=16' against
 * the unit's 8: the ratios are then with the flags over without.
 */
const baseRoot = baselineRoot('proxy-ab.js', '[rounds] [bulk|sse]  (or flags:<node flags> in place of the checkout)');
const rounds = Number(process.argv[3] ?? 8);
const mode = process.argv[4] === 'bulk' || process.argv[4] === 'sse' ? process.argv[4] : 'small';
const WARMUP = 2;

type RigModule = RigSetup & Pick<typeof own, 'measure'>;

interface Round {
  rate: number;
  gatewayUs: number;
  agentUs: number;
}

const flagged = /^(gateway-|agent-)?flags:(.*)$/s.exec(baseRoot);
/** A rig of this checkout whose gateway and/or agent get `flags` on their command line (CYBERUN_BENCH_*_NODE_ARGS). */
async function flaggedRig(on: string | undefined, flags: string) {
  const saved = { gateway: process.env['CYBERUN_BENCH_GATEWAY_NODE_ARGS'], agent: process.env['CYBERUN_BENCH_AGENT_NODE_ARGS'] };
  const add = (was: string | undefined) => `${was ?? ''} ${flags}`.trim();
  if (on !== 'agent-') process.env['CYBERUN_BENCH_GATEWAY_NODE_ARGS'] = add(saved.gateway);
  if (on !== 'gateway-') process.env['CYBERUN_BENCH_AGENT_NODE_ARGS'] = add(saved.agent);
  try {
    return await own.setup();
  } finally {
    for (const [name, value] of [['CYBERUN_BENCH_GATEWAY_NODE_ARGS', saved.gateway], ['CYBERUN_BENCH_AGENT_NODE_ARGS', saved.agent]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

const variants = flagged
  ? [
      { name: 'without the flags', module: own as RigModule, rig: await own.setup(), rounds: [] as Round[] },
      { name: `with ${flagged[1] ?? ''}flags ${flagged[2] ?? ''}`, module: own as RigModule, rig: await flaggedRig(flagged[1], flagged[2] ?? ''), rounds: [] as Round[] },
    ]
  : await (async () => {
      const base = await baselineModule<RigModule>(baseRoot, 'proxy-rig.js');
      return [
        { name: 'baseline', module: base, rig: await base.setup(), rounds: [] as Round[] },
        { name: 'this checkout', module: own as RigModule, rig: await own.setup(), rounds: [] as Round[] },
      ];
    })();

/**
 * One round: req/s and CPU µs per request; with `bulk` MB/s and CPU µs per MiB; with `sse` the ms
 * the tunnel adds to the first event (over direct's, measured right after) and CPU µs per stream.
 */
async function oneRound(v: (typeof variants)[number]): Promise<Round> {
  const cpu = async () => [await processCpuSeconds(v.rig.pids.gateway), await processCpuSeconds(v.rig.pids.agent)] as const;
  const tunnel = (kind: 'bulk' | 'firstEvent' | 'throughput', path: string) => v.module.measure<number>(kind, `${v.rig.tunnel}${path}`, v.module.auth);
  const [g0, a0] = await cpu();
  const measured = mode === 'bulk' ? await tunnel('bulk', '/bytes') : mode === 'sse' ? await tunnel('firstEvent', '/sse') : await tunnel('throughput', '/health');
  const [g1, a1] = await cpu();
  const relayed = mode === 'bulk' ? BULK_BYTES / 2 ** 20 : mode === 'sse' ? SSE_SAMPLES : measured * SMALL_SECONDS;
  const perUnit = (seconds: number) => Math.round((seconds / relayed) * 1e6);
  // With `sse`, direct's first event right after (outside the CPU bracket) is subtracted.
  const rate = mode === 'sse' ? Number((measured - (await v.module.measure<number>('firstEvent', `${v.rig.direct}/sse`, {}))).toFixed(3)) : Math.round(measured);
  return { rate, gatewayUs: perUnit(g1 - g0), agentUs: perUnit(a1 - a0) };
}

const units = {
  small: ['req/s', 'request', `${CONCURRENCY} clients`],
  bulk: ['MB/s', 'MiB', `${BULK_BYTES / 2 ** 20} MiB download`],
  sse: ['ms added to the first event', 'stream', `${SSE_SAMPLES} streams one by one`],
} as const;
const [rateUnit, perUnit, load] = units[mode];

try {
  for (let i = 0; i < rounds + WARMUP; i++) {
    for (const v of inRoundOrder(variants, i + 1)) {
      const r = await oneRound(v);
      if (i >= WARMUP) v.rounds.push(r);
      process.stdout.write(`round ${i + 1} ${v.name}: ${r.rate} ${rateUnit}, ${load}; CPU per ${perUnit}: gateway ${r.gatewayUs} µs, agent ${r.agentUs} µs${i < WARMUP ? ' (warm-up)' : ''}\n`);
    }
  }
  for (const v of variants) {
    process.stdout.write(
      `${v.name}: ${spread(v.rounds.map((r) => r.rate))} ${rateUnit}; gateway ${spread(v.rounds.map((r) => r.gatewayUs))} µs, agent ${spread(v.rounds.map((r) => r.agentUs))} µs per ${perUnit}\n`,
    );
  }
  // Each round's two runs follow each other, so their ratio cancels what drifts slower than a
  // round (another tenant's load): the paired ratios resolve smaller changes than the medians.
  // (With `sse` the ratio is of ms added: below 1 is this checkout adding less.)
  const [baseRounds, ownRounds] = [variants[0]?.rounds ?? [], variants[1]?.rounds ?? []];
  const paired = (pick: (r: Round) => number) => {
    const ratios = ownRounds.map((r, i) => pick(r) / pick(baseRounds[i] as Round));
    return spread(ratios, (x) => x.toFixed(3));
  };
  process.stdout.write(
    `${flagged ? 'with the flags / without' : 'this checkout / baseline'}, paired by round: ${rateUnit} ${paired((r) => r.rate)}; gateway CPU ${paired((r) => r.gatewayUs)}, agent CPU ${paired((r) => r.agentUs)}\n`,
  );
} finally {
  for (const v of variants) await v.rig.cleanup();
}
