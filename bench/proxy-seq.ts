import { containerCpuSeconds, processesCpuSeconds } from './process-cpu.js';
import { SSE_SAMPLES } from './proxy-client.js';
import { measure, oneByOne, rigPaths, setup, type RigPath } from './proxy-rig.js';

/**
 * One client, requests one after another, on every path of the rig in the same run: direct,
 * ssh -L, the minimal one-process Node proxy, the minimal two-process tunnel and the tunnel. Each round prints, per path, the
 * time per small GET, the service's CPU per request (its container's cgroup) and the proxy's own
 * (ssh + sshd, min-proxy, gateway + agent), which shows what a request costs when every process
 * on its way sleeps between requests, and each path's time over direct's:
 *
 *   npm run bench -- none && node dist-bench/bench/proxy-seq.js [rounds] [requests per path] [gap ms]
 *
 * With a gap the client pauses that long after each answer, so that every process on the way has
 * gone back to sleep before the next request (a client that polls, the events of a slow SSE
 * stream), and the time per request is the median's instead of the mean's. With `sse` after the
 * gap, each round also times the SSE row's measure (the first event of SSE_SAMPLES streams one by
 * one) on direct, ssh -L and the tunnel (the two floors answer whole, so not on them): beside the
 * GETs it shows whether a streamed answer's way costs more than a small GET's.
 *
 *   node dist-bench/bench/proxy-seq.js 4 300 0 sse
 */
const rounds = Number(process.argv[2] ?? 4);
const perPath = Number(process.argv[3] ?? 1000);
const gapMs = Number(process.argv[4] ?? 0);
const withSse = process.argv[5] === 'sse';
const rig = await setup();

const all = rigPaths(rig);
const paths = [all.direct, all.ssh, all.minProxy, all.minTunnel, all.tunnel];

try {
  for (let i = 0; i < rounds; i++) {
    const parts: string[] = [];
    let direct = 0;
    for (const p of paths) {
      const pids = await p.pids();
      const [s0, c0] = [await containerCpuSeconds(rig.containerId), await processesCpuSeconds(pids)];
      const ms = await oneByOne(`${p.url}/health`, p.headers, perPath, gapMs);
      const [s1, c1] = [await containerCpuSeconds(rig.containerId), await processesCpuSeconds(pids)];
      const us = (s: number) => Math.round((s / perPath) * 1e6);
      if (p === all.direct) direct = ms;
      const added = p === all.direct ? '' : `, +${(ms - direct).toFixed(3)}`;
      parts.push(`${p.name} ${ms.toFixed(3)} ms${added} (service ${us(s1 - s0)} µs${pids.length > 0 ? `, proxy ${us(c1 - c0)} µs` : ''})`);
    }
    process.stdout.write(`round ${i + 1}, 1 client${gapMs > 0 ? `, ${gapMs} ms between requests` : ''}, per request: ${parts.join('; ')}\n`);
    if (withSse) {
      const first = async (p: RigPath) => measure<number>('firstEvent', `${p.url}/sse`, p.headers);
      const direct = await first(all.direct);
      const added = [`ssh -L +${((await first(all.ssh)) - direct).toFixed(3)}`, `tunnel +${((await first(all.tunnel)) - direct).toFixed(3)}`];
      process.stdout.write(`round ${i + 1}, SSE first event, ${SSE_SAMPLES} streams one by one: direct ${direct.toFixed(3)} ms, ${added.join(', ')}\n`);
    }
  }
} finally {
  await rig.cleanup();
}
