import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { hostileConnection, hostileFrame } from '../test/helpers/hostile-frames.js';
import { Prng } from '../test/helpers/prng.js';
import type { Benchmark, BenchResult } from './types.js';

const KEY = 'ak-bench-hostile-000000000000000000';
const CHECKPOINTS = [10_000, 20_000, 40_000, 80_000];
const MIB = 1024 * 1024;

interface Memory {
  heapUsed: number;
  external: number;
  rss: number;
}

/**
 * What a hostile agent connection leaves behind in the gateway: the fuzz test's frames (seeded),
 * sent connection after connection, with the gateway's live memory (heap + external, after two
 * full collections) measured at 10k, 20k, 40k and 80k frames. The baseline is the first
 * checkpoint: live memory must not grow with the number of frames (a leak per frame or per
 * connection would). RSS is shown too; it includes freed memory the allocator keeps.
 */
export const hostileBenchmark: Benchmark = {
  name: 'hostile',
  async available() {
    return true;
  },
  async run(): Promise<BenchResult[]> {
    const child = fork(fileURLToPath(new URL('./hostile-gateway.js', import.meta.url)), [], { execArgv: ['--expose-gc'], env: { ...process.env, HOSTILE_AGENT_KEY: KEY }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const next = <T>(): Promise<T> => new Promise((resolve) => child.once('message', (m) => resolve(m as T)));
    try {
      const { agentUrl } = await next<{ agentUrl: string }>();
      const r = new Prng(0x7a11ed13);
      const pool = Array.from({ length: 10_000 }, () => hostileFrame(r, '00000000-0000-4000-8000-000000000000'));
      let taken = 0;
      let sent = 0;
      const measured: Array<{ frames: number; memory: Memory }> = [];
      for (const target of CHECKPOINTS) {
        while (sent < target) sent += (await hostileConnection(agentUrl, KEY, r, () => pool[taken++ % pool.length] ?? '', r.int(160, 260), false)).sent;
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        const memory = next<Memory>();
        child.send('measure');
        measured.push({ frames: sent, memory: await memory });
      }
      const live = (m: Memory): number => (m.heapUsed + m.external) / MIB;
      const first = measured[0] as { frames: number; memory: Memory };
      return measured.slice(1).map(({ frames, memory }) => ({
        name: `hostile agent: gateway live memory after ${frames} frames (baseline: after ${first.frames}; rss ${(memory.rss / MIB).toFixed(0)} MiB)`,
        unit: 'MiB',
        value: live(memory),
        baseline: live(first.memory),
        ratio: live(memory) / live(first.memory),
        target: 'ratio <= 1.10',
        met: live(memory) / live(first.memory) <= 1.1,
      }));
    } finally {
      child.send('stop');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  },
};
