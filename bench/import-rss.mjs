#!/usr/bin/env node
// What loading costs: RSS of a fresh `node` after importing modules, for docs/runtime-footprint.md.
//
//   node bench/import-rss.mjs [--runs N] [--node-flag FLAG]… SPEC…
//
// Each SPEC is one or more modules joined by "+", imported in that order in a fresh process
// (`none` imports nothing); bare names resolve from this repository's node_modules, paths
// (./dist/agent.js, /abs/dist/agent.js) from the working directory. After the imports: two GCs,
// 200 ms, one more GC, then process.memoryUsage().rss. Prints the median and range over N runs
// (default 8). Build first (`npm run build`) to measure dist/.
//
//   node bench/import-rss.mjs none dockerode ./dist/agent.js ./dist/agent.js+dockerode
//   node bench/import-rss.mjs --node-flag --max-semi-space-size=1 ./dist/agent.js
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const self = fileURLToPath(import.meta.url);

if (process.argv[2] === '--child') {
  for (const spec of process.argv.slice(3)) {
    if (spec === 'none') continue;
    await import(spec.startsWith('.') || spec.startsWith('/') ? pathToFileURL(path.resolve(spec)).href : spec);
  }
  globalThis.gc();
  globalThis.gc();
  await new Promise((resolve) => setTimeout(resolve, 200));
  globalThis.gc();
  process.stdout.write(`${process.memoryUsage().rss}\n`);
  process.exit(0);
}

let runs = 8;
const nodeFlags = [];
const specs = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--runs') runs = Number(args[++i]);
  else if (args[i] === '--node-flag') nodeFlags.push(args[++i]);
  else specs.push(args[i]);
}
if (specs.length === 0 || !Number.isInteger(runs) || runs < 1) {
  process.stderr.write('usage: node bench/import-rss.mjs [--runs N] [--node-flag FLAG]... SPEC...   (SPEC: none | module[+module...])\n');
  process.exit(2);
}

const mb = (bytes) => (bytes / 2 ** 20).toFixed(1);
process.stdout.write(`node ${process.version} ${nodeFlags.join(' ')}, ${runs} runs each: median (min-max) RSS in MB\n`);
for (const spec of specs) {
  const samples = [];
  for (let r = 0; r < runs; r++) {
    const out = execFileSync(process.execPath, ['--expose-gc', ...nodeFlags, self, '--child', ...spec.split('+')], { encoding: 'utf8' });
    samples.push(Number(out.trim()));
  }
  samples.sort((a, b) => a - b);
  const median = samples.length % 2 === 1 ? samples[(samples.length - 1) / 2] : (samples[samples.length / 2 - 1] + samples[samples.length / 2]) / 2;
  process.stdout.write(`${spec.padEnd(48)} ${mb(median).padStart(6)}  (${mb(samples[0])}-${mb(samples.at(-1))})\n`);
}
