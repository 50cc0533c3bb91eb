import { threadTotals } from './process-cpu.js';
import { LATENCY_CONCURRENCY, SMALL_SECONDS, quantile } from './proxy-client.js';
import { measure, rigPaths, setup, startMinTunnel, startRawTunnel, type RigPath } from './proxy-rig.js';

/**
 * Where the tunnel stands against the floor of its shape: 64-client small-GET rounds alternating
 * ssh -L, the minimal two-process Node tunnel (bench/min-tunnel.ts) and the tunnel, each round
 * printing per path the req/s and, per request, the CPU of its processes' main threads (with the
 * part of it spent in the kernel: system calls and the network stack's work they do), of their
 * other threads (V8's GC helpers, libuv's pool) and the main threads' voluntary context switches
 * (sleeps and wake-ups). With `streams`, two more: the minimal tunnel with the project's
 * TunnelStream per exchange on both ends, used as the tunnel uses it (min-tunnel.ts `streams`)
 * and through its Node stream sides as the tunnel did before 2026-12-07 (`duplex`), which price
 * that object and what the whole-response paths saved. With `raw`, two more: the same shape
 * without ws (a plain TCP connection between the processes), and without ws and undici (the back's
 * own HTTP/1.1 client; bench/raw-tunnel.ts, the rig's `rawTunnel`), which price those two libraries. With `latency`,
 * each round also times LATENCY_CONCURRENCY closed-loop clients on every path and on the replica
 * directly, and prints each path's p50 over direct's (the p50 goal's measure):
 *
 *   npm run bench -- none && node dist-bench/bench/proxy-floor.js [rounds] [streams] [raw] [latency]
 */
const rounds = Number(process.argv[2] ?? 4);
const options = new Set(process.argv.slice(3));
const rig = await setup();

const extra = [
  ...(options.has('streams')
    ? [
        { name: 'minimal tunnel + TunnelStream', ...(await startMinTunnel(rig.direct, 'streams')) },
        { name: 'minimal tunnel + TunnelStream as Duplex', ...(await startMinTunnel(rig.direct, 'duplex')) },
      ]
    : []),
  ...(options.has('raw') ? [{ name: 'minimal tunnel without ws', ...(await startRawTunnel(new URL(rig.direct).host, 'undici')) }] : []),
];

const all = rigPaths(rig);
const paths: RigPath[] = [
  all.ssh,
  all.minTunnel,
  ...extra.map((e) => ({ name: e.name, url: e.url, headers: {}, pids: async () => e.children.map((c) => c.pid ?? 0) })),
  ...(options.has('raw') ? [all.rawTunnel] : []),
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
        `${p.name} ${Math.round(rps)} req/s, CPU µs main ${us(after.mainCpu - before.mainCpu)} (kernel ${us(after.mainKernel - before.mainKernel)}) + other threads ${us(after.otherCpu - before.otherCpu)}, wake-ups ${((after.mainSwitches - before.mainSwitches) / n).toFixed(2)}`,
      );
    }
    process.stdout.write(`round ${i + 1}${i === 0 ? ' (warm-up)' : ''}, per request: ${parts.join('; ')}\n`);
    if (options.has('latency')) {
      const p50 = async (p: RigPath) => quantile(await measure<number[]>('latencies', `${p.url}/health`, p.headers), 0.5);
      const direct = await p50(all.direct);
      const added: string[] = [];
      for (const p of paths) added.push(`${p.name} ${((await p50(p)) - direct).toFixed(2)}`);
      process.stdout.write(`round ${i + 1}, p50 added at ${LATENCY_CONCURRENCY} clients, ms: ${added.join('; ')} (direct ${direct.toFixed(2)})\n`);
    }
  }
} finally {
  for (const child of extra.flatMap((e) => e.children)) child.kill();
  await rig.cleanup();
}
