import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { SMALL_SECONDS } from './proxy-client.js';
import { measure, rigPaths, setup, type RigPath } from './proxy-rig.js';

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

/** Another minimal tunnel to the same replica, in a stream mode of min-tunnel.ts; its URL and processes. */
async function minTunnelWith(mode: 'streams' | 'duplex'): Promise<{ url: string; children: ChildProcess[] }> {
  const script = fileURLToPath(new URL('./min-tunnel.js', import.meta.url));
  const firstLine = (child: ChildProcess) => new Promise<string>((resolve) => child.stdout?.once('data', (d: Buffer) => resolve(String(d).trim())));
  const front = spawn(process.execPath, [script, 'front', mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await firstLine(front);
  const back = spawn(process.execPath, [script, 'back', rig.direct, port, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  await firstLine(back);
  return { url: `http://127.0.0.1:${port}`, children: [front, back] };
}
const extra = withStreams
  ? [
      { name: 'minimal tunnel + TunnelStream', ...(await minTunnelWith('streams')) },
      { name: 'minimal tunnel + TunnelStream as Duplex', ...(await minTunnelWith('duplex')) },
    ]
  : [];

interface ThreadTotals {
  mainCpu: number;
  otherCpu: number;
  mainSwitches: number;
}

/** CPU seconds and voluntary switches of the processes' threads so far, main threads apart. */
async function threadTotals(pids: readonly number[]): Promise<ThreadTotals> {
  const t: ThreadTotals = { mainCpu: 0, otherCpu: 0, mainSwitches: 0 };
  for (const pid of pids) {
    for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
      const status = await readFile(`/proc/${pid}/task/${tid}/status`, 'utf8').catch(() => '');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cpu = (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100; // USER_HZ
      if (tid === String(pid)) {
        t.mainCpu += cpu;
        t.mainSwitches += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      } else t.otherCpu += cpu;
    }
  }
  return t;
}

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
