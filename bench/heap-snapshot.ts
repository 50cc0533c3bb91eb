/**
 * The agent's live JS heap per open SSE stream, from two heap snapshots of one fresh agent (idle,
 * and with SCALE_STREAMS streams open). A snapshot holds only what is reachable (V8 collects
 * first), so unlike the scale row's RSS it does not move with where the heap is between GCs and
 * resolves a change of a few hundred bytes per stream; it does not see memory outside the JS heap
 * (socket buffers, malloc). Used by bench/sse-heap.ts and the full proxy bench.
 */
import { readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { RigModule } from './ab-baseline.js';
import { SCALE_STREAMS, withOpenStreams } from './sse-scale.js';

export interface HeapSummary {
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

/**
 * Live JS heap per open SSE stream, in KiB: a fresh rig of `rig` whose agent writes heap snapshots
 * on SIGUSR2, one snapshot idle and one with SCALE_STREAMS streams open (withOpenStreams). The
 * two summaries come back for a look at what grew. With `added`, a third snapshot with twice as
 * many open, the first ones still open: `addedPerStream` is what one more stream holds once the
 * agent serves streams at all (the first step also counts the code compiled on first use).
 */
export async function liveHeapPerOpenStream(
  rig: RigModule,
  options: { added?: boolean } = {},
): Promise<{ perStream: number; idle: HeapSummary; open: HeapSummary; addedPerStream?: number; twice?: HeapSummary }> {
  // Through the variable every checkout's rig reads, not a setup() option: a baseline's rig predates
  // any such option.
  const variable = 'CYBERUN_BENCH_AGENT_NODE_ARGS';
  const before = process.env[variable];
  process.env[variable] = `${before ?? ''} --heapsnapshot-signal=SIGUSR2`.trim();
  const r = await rig.setup().finally(() => {
    if (before === undefined) delete process.env[variable];
    else process.env[variable] = before;
  });
  const url = `${r.tunnel}/sse`;
  try {
    const idle = await snapshot(r.pids.agent);
    const [open, twice] = await withOpenStreams(url, rig.auth, async () => {
      const atOne = await snapshot(r.pids.agent);
      return [atOne, options.added === true ? await withOpenStreams(url, rig.auth, () => snapshot(r.pids.agent)) : undefined] as const;
    });
    const perStream = (a: HeapSummary, b: HeapSummary) => (b.bytes - a.bytes) / SCALE_STREAMS / 1024;
    return { perStream: perStream(idle, open), idle, open, ...(twice === undefined ? {} : { addedPerStream: perStream(open, twice), twice }) };
  } finally {
    await r.cleanup();
  }
}
