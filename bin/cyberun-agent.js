#!/usr/bin/env -S node --max-semi-space-size=1
// The 1 MiB young-generation semi-space frees each proxied chunk's socket read buffer in a cheap
// scavenge instead of a full GC, and trims idle RSS (docs/proxy-performance.md, Bulk). `env -S`
// is in coreutils 8.30+, older than any distribution Node.js 20 runs on.
// Thin launcher: the compiled CLI lives in dist/ (run `npm run build` first).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`cyberun-agent: ${err?.stack ?? err}\n`); process.exitCode = 1; },
);
