import { renameSync, writeFileSync } from 'node:fs';
import { PerformanceObserver, constants } from 'node:perf_hooks';

/**
 * Preloaded (`--import`) into the rig's gateway and agent by bench/proxy-rig.ts when asked
 * (`setup({ gcProbe: true })`): counts the process's garbage collections by kind and their pause
 * time, and writes the totals so far as JSON to BENCH_GC_PROBE_FILE each time the process gets
 * SIGUSR2. (Not a CYBERUN_ name: the agent refuses variables of its own prefix that it does not
 * know.) Nothing runs per request: the observer is called once per GC.
 */
export interface GcTotals {
  /** How many times the totals were written, this one included (the reader waits for it). */
  dumps: number;
  /** Scavenges (young generation). */
  minor: number;
  /** Everything else: mark-compacts, incremental marking, weak-callback processing. */
  major: number;
  minorMs: number;
  majorMs: number;
}

const file = process.env['BENCH_GC_PROBE_FILE'];
if (file !== undefined) {
  const totals: GcTotals = { dumps: 0, minor: 0, major: 0, minorMs: 0, majorMs: 0 };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } | null }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        totals.minor++;
        totals.minorMs += entry.duration;
      } else {
        totals.major++;
        totals.majorMs += entry.duration;
      }
    }
  }).observe({ entryTypes: ['gc'] });
  process.on('SIGUSR2', () => {
    totals.dumps++;
    writeFileSync(`${file}.tmp`, JSON.stringify(totals));
    renameSync(`${file}.tmp`, file); // whole or not at all for the reader
  });
}
