#!/usr/bin/env node
// Stages a Docker build context that needs no registry: compiles src/ into <dir>/dist and copies
// the production dependencies (package-lock.json entries without "dev": true) from node_modules/.
// Run after `npm ci` on a machine that has it; then:
//   docker build --build-arg PREBUILT=1 --build-arg BASE=<node image> -t cyberun-agent <dir>
// Usage: node deploy/docker/stage-context.mjs <dir>   (the dir is emptied first)
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
const out = process.argv[2];
if (!out) {
  console.error('usage: node deploy/docker/stage-context.mjs <dir>');
  process.exit(2);
}
const dir = path.resolve(out);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', path.join(dir, 'dist'), '--sourceMap', 'false'], { stdio: 'inherit' });

for (const file of ['package.json', 'package-lock.json', 'Dockerfile', 'bin', 'deploy/docker']) {
  cpSync(path.join(root, file), path.join(dir, file), { recursive: true });
}
const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
let copied = 0;
for (const [key, entry] of Object.entries(lock.packages ?? {})) {
  if (key === '' || entry.dev || !key.startsWith('node_modules/')) continue;
  const from = path.join(root, key);
  if (!existsSync(from)) {
    if (entry.optional) continue;
    console.error(`${key} is in package-lock.json but not installed: run npm ci first`);
    process.exit(1);
  }
  // Nested packages are copied with their parent's tree; copy each top-level-or-nested path once.
  cpSync(from, path.join(dir, key), { recursive: true, dereference: true, filter: (src) => !src.slice(from.length).includes('/node_modules/') });
  copied++;
}
console.log(`staged ${dir}: dist/ compiled, ${copied} production packages`);
