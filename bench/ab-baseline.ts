import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { quantile } from './proxy-client.js';

/**
 * What the A/B scripts (proxy-ab.ts, scale-ab.ts, sse-heap.ts) share: the baseline checkout named
 * on the command line, built with `npm run bench -- none`, whose own bench modules set up its side.
 */

/** A checkout's bench/proxy-rig.ts (this one, or a baseline's built copy): what sets up its rig. */
export type RigModule = Pick<typeof import('./proxy-rig.js'), 'setup' | 'auth'>;
export function baselineRoot(script: string, options = '[rounds]'): string {
  const root = process.argv[2];
  if (root === undefined) throw new Error(`usage: node dist-bench/bench/${script} <baseline checkout, built with npm run bench -- none> ${options}`);
  return root;
}

/** A built bench module of the baseline checkout, e.g. 'proxy-rig.js'. */
export async function baselineModule<T>(root: string, file: string): Promise<T> {
  return (await import(pathToFileURL(path.resolve(root, 'dist-bench', 'bench', file)).href)) as T;
}

/** The sides in round `round`'s order (from 1): as given in odd rounds, reversed in even ones. */
export function inRoundOrder<T>(sides: readonly T[], round: number): readonly T[] {
  return round % 2 === 1 ? sides : [...sides].reverse();
}

/** `min–max (median m)` of a side's rounds. */
export function spread(xs: number[], format: (x: number) => string = String): string {
  return `${format(Math.min(...xs))}–${format(Math.max(...xs))} (median ${format(quantile(xs, 0.5))})`;
}
