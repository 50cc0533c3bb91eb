import { benchmarks } from './registry.js';
import type { BenchResult } from './types.js';
import { renderTable } from '../src/cli/table.js';

/** `npm run bench`: runs every benchmark of the project and prints a table of ratios. */
async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const rows: BenchResult[] = [];
  for (const b of benchmarks) {
    if (only.length > 0 && !only.some((o) => b.name.includes(o))) continue;
    const ok = await b.available();
    if (ok !== true) {
      process.stdout.write(`SKIP ${b.name}: ${ok}\n`);
      continue;
    }
    process.stdout.write(`running ${b.name}…\n`);
    try {
      rows.push(...(await b.run()));
    } catch (err) {
      process.stdout.write(`FAIL ${b.name}: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  }
  const fmt = (n: number | undefined, d = 3) => (n === undefined ? '-' : Number.isInteger(n) ? String(n) : n.toFixed(d));
  const table = [['benchmark', 'value', 'baseline', 'unit', 'ratio', 'target', 'met'], ...rows.map((r) => [r.name, fmt(r.value), fmt(r.baseline), r.unit, fmt(r.ratio), r.target, r.met ? 'yes' : 'NO'])];
  process.stdout.write(`\n${renderTable(table)}`);
}

await main();
