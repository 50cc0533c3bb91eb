import { threadTotals } from './process-cpu.js';
import { SMALL_SECONDS } from './proxy-client.js';
import { measure, rigPaths, setup, startMinTunnel, type RigPath } from './proxy-rig.js';

/**
 * Where the tunnel stands against the floor of its shape: 64-client small-GET rounds alternating
 * ssh -L, the minimal two-process Node tunnel (bench/min-tunnel.ts) and the tunnel, each round
 * printing per path the req/s and, per request, the CPU of its processes' main threads, of their
 * other threads (V8's GC helpers, libuv's pool) and the main threads' voluntary context switches
 * (sleeps and wake-ups). With `streams`, two more: the minimal tunnel with the project's
 * TunnelStream per exchange on both ends, used as the tunnel uses it (min-tunnel.ts `streams`)
 * and through its Node stream sides as the tunnel did before 2026-12-07 (`duplex`), which price
 * that object and what the whole-response paths saved:
 *
 *   npm run bench -- none && node dist-bench/bench/proxy-floor.js [rounds] [streams]
 */
const rounds = Number(process.argv[2] ?? 4);
const withStreams = process.argv[3] === 'streams';
const rig = await setup();

const extra = withStreams
  ? [
      { name: 'minimal tunnel + TunnelStream', ...(await startMinTunnel(rig.direct, 'streams')) },
      { name: 'minimal tunnel + TunnelStream as Duplex', ...(await startMinTunnel(rig.direct, 'duplex')) },
    ]
  : [];

const all = rigPaths(rig);
const paths: RigPath[] = [
  all.ssh,
  all.minTunnel,
  ...extra.map((e) => ({ name: e.name, url: e.url, headers: {}, pids: async () => e.children.map((c) => c.pid ?? 0) })),
  all.tunnel,
];

try {
  for (let i = 0; i < rounds; i++) {
    const parts: string[] = [];
    for (const p of paths) {
      const pids = await p.pids();
      const before = await threadTotals(pids);
      const rps = await measure<number>('throughput', `${p.url}/health`, p.headers);
      const after = await threadTotals(pids);
      const n = rps * SMALL_SECONDS;
      const us = (s: number) => Math.round((s / n) * 1e6);
      parts.push(
        `${p.name} ${Math.round(rps)} req/s, CPU µs main ${us(after.mainCpu - before.mainCpu)} + other threads ${us(after.otherCpu - before.otherCpu)}, wake-ups ${((after.mainSwitches - before.mainSwitches) / n).toFixed(2)}`,
      );
    }
    process.stdout.write(`round ${i + 1}${i === 0 ? ' (warm-up)' : ''}, per request: ${parts.join('; ')}\n`);
  }
} finally {
  for (const child of extra.flatMap((e) => e.children)) child.kill();
  await rig.cleanup();
}
