import { readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { baselineModule, spread } from './ab-baseline.js';
import * as own from './proxy-rig.js';
import { SCALE_STREAMS, withOpenStreams } from './sse-scale.js';

/**
 * The agent's live JS heap per open SSE stream: two heap snapshots of one fresh agent, idle and
 * with SCALE_STREAMS streams open through it. A snapshot holds only what is reachable (V8 collects
 * first), so unlike the scale row's RSS it does not move with where the heap is between GCs and
 * resolves a change of a few hundred bytes per stream; it does not see memory outside the JS heap
 * (socket buffers, malloc).
 *
 *   npm run bench -- none && node dist-bench/bench/sse-heap.js [rounds] [baseline checkout]
 *
 * Each round starts a fresh rig (the agent with `--heapsnapshot-signal=SIGUSR2`), and with a
 * baseline checkout (built with `npm run bench -- none`) one of the baseline's too, alternating.
 * Prints each reading, each side's range, and the kinds of object that grew most per stream in
 * this checkout's last round.
 */
const rounds = Number(process.argv[2] ?? 1);
const baseRoot = process.argv[3];
process.env['CYBERUN_BENCH_AGENT_NODE_ARGS'] = `${process.env['CYBERUN_BENCH_AGENT_NODE_ARGS'] ?? ''} --heapsnapshot-signal=SIGUSR2`.trim();

type RigModule = Pick<typeof own, 'setup' | 'auth'>;
interface HeapSummary {
  bytes: number;
  /** Self size and count by kind: the constructor's name for objects and closures, else V8's node type. */
  kinds: Map<string, { bytes: number; count: number }>;
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

function summarize(s: Snapshot): HeapSummary {
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [type, name, size] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')];
  const kinds = new Map<string, { bytes: number; count: number }>();
  let bytes = 0;
  for (let i = 0; i < s.nodes.length; i += fields.length) {
    const t = types[s.nodes[i + type] as number] ?? '?';
    const self = s.nodes[i + size] as number;
    const kind = t === 'object' || t === 'closure' ? `${t} ${s.strings[s.nodes[i + name] as number]}` : t;
    const k = kinds.get(kind) ?? { bytes: 0, count: 0 };
    k.bytes += self;
    k.count++;
    kinds.set(kind, k);
    bytes += self;
  }
  return { bytes, kinds };
}

/** Signals the agent to write a heap snapshot into its working directory, reads and removes it. */
async function snapshot(pid: number): Promise<HeapSummary> {
  const dir = await readlink(`/proc/${pid}/cwd`);
  const before = new Set(await readdir(dir));
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    const file = (await readdir(dir)).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (file === undefined) continue;
    const full = path.join(dir, file);
    // V8 writes the file as it walks the heap: it is complete once its size holds and it parses.
    const size = (await stat(full)).size;
    await new Promise((r) => setTimeout(r, 1000));
    if (size === 0 || size !== (await stat(full)).size) continue;
    try {
      const summary = summarize(JSON.parse(await readFile(full, 'utf8')) as Snapshot);
      await rm(full);
      return summary;
    } catch {
      continue;
    }
  }
  throw new Error(`the agent (pid ${pid}) wrote no heap snapshot within 5 minutes`);
}

async function measure(rig: RigModule): Promise<{ perStream: number; idle: HeapSummary; open: HeapSummary }> {
  const r = await rig.setup();
  try {
    const idle = await snapshot(r.pids.agent);
    const open = await withOpenStreams(`${r.tunnel}/sse`, rig.auth, () => snapshot(r.pids.agent));
    return { perStream: (open.bytes - idle.bytes) / SCALE_STREAMS / 1024, idle, open };
  } finally {
    await r.cleanup();
  }
}

const variants = [
  ...(baseRoot === undefined ? [] : [{ name: 'baseline', rig: await baselineModule<RigModule>(baseRoot, 'proxy-rig.js'), kib: [] as number[] }]),
  { name: 'this checkout', rig: own as RigModule, kib: [] as number[] },
];
let last: { idle: HeapSummary; open: HeapSummary } | undefined;
for (let round = 1; round <= rounds; round++) {
  for (const v of round % 2 === 1 ? variants : [...variants].reverse()) {
    const m = await measure(v.rig);
    v.kib.push(m.perStream);
    if (v.rig === own) last = m;
    process.stdout.write(`round ${round} ${v.name}: live heap ${(m.idle.bytes / 2 ** 20).toFixed(1)} MiB idle, ${(m.open.bytes / 2 ** 20).toFixed(1)} MiB with ${SCALE_STREAMS} open: ${m.perStream.toFixed(2)} KiB per open stream\n`);
  }
}
for (const v of variants) process.stdout.write(`${v.name}: ${spread(v.kib, (x) => x.toFixed(2))} KiB of live heap per open stream\n`);
if (last !== undefined) {
  const { idle, open } = last;
  const grown = [...open.kinds].map(([kind, k]) => {
    const was = idle.kinds.get(kind) ?? { bytes: 0, count: 0 };
    return { kind, bytes: (k.bytes - was.bytes) / SCALE_STREAMS, count: (k.count - was.count) / SCALE_STREAMS };
  });
  process.stdout.write(`grew most per open stream (this checkout, last round):\n`);
  for (const g of grown.sort((a, b) => b.bytes - a.bytes).slice(0, 15)) process.stdout.write(`  ${g.bytes.toFixed(0).padStart(6)} B in ${g.count.toFixed(2).padStart(5)} × ${g.kind}\n`);
}
