import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Paces young-generation GCs (scavenges) by the bytes a process relays, so that the socket read
 * buffers behind relayed chunks are freed by a cheap scavenge instead of a full mark-compact.
 *
 * Why: every socket read is a fresh 64 KiB buffer outside the JS heap. It is dead microseconds
 * later, but V8 (11.3 in Node.js 20) frees it only when a GC visits its ~100-byte JS object, and a
 * scavenge runs only when the young generation fills. A relaying process allocates little JS heap
 * per byte, so with the semi-spaces V8 grows to 16 MiB a scavenge comes only every ~70 MiB or more
 * of traffic; before that, the dead buffers put external memory 64 MiB past its level at the
 * last full GC, and V8 starts an incremental mark-compact, every ~25–60 MiB. That cost 2–3x the CPU
 * per byte. One scavenge per PACE_BYTES keeps external memory far below that limit, for a
 * millisecond or two each, and leaves the young generation's size (and with it the cost of small
 * requests) alone. 4 MiB measured best of 1–16 MiB: docs/proxy-performance.md, Bulk.
 */
export const PACE_BYTES = 4 * 1024 * 1024;

/** V8's `gc`: a full GC without options, a scavenge with `{ type: 'minor' }`. */
type GcFunction = (options?: { type?: 'minor' | 'major'; execution?: 'async' | 'sync' }) => unknown;

let relayed = 0;
/** undefined: not looked up yet (no context is made until a process relays PACE_BYTES). */
let gcFunction: GcFunction | null | undefined;

/** Counts bytes relayed through this process (read from one socket, written to another). */
export function noteRelayedBytes(bytes: number): void {
  relayed += bytes;
  if (relayed < PACE_BYTES) return;
  relayed = 0;
  // async: the scavenge runs in a task of its own, after the frames of this turn are released.
  v8Gc()?.({ type: 'minor', execution: 'async' });
}

/**
 * V8's `gc` function, without requiring `--expose-gc` on the command line: with the flag set at
 * run time, contexts created afterwards get it (the main context does not, so nothing else in the
 * process sees a `gc` global). Looked up once; null when this runtime offers none.
 */
export function v8Gc(): GcFunction | null {
  if (gcFunction === undefined) gcFunction = lookUpGc();
  return gcFunction;
}

function lookUpGc(): GcFunction | null {
  try {
    if (typeof globalThis.gc === 'function') return globalThis.gc as GcFunction;
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as GcFunction) : null;
  } catch {
    return null;
  }
}
