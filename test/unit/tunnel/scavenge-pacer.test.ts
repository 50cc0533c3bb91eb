import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { repoPath } from '../../helpers/repo-root.js';

// The pacer is measured in a fresh Node.js process (compiled module; `npm test` builds dist/ first):
// a vitest worker allocates on its own and may collect the buffers by chance, which would let
// a broken pacer pass.
const PACER = pathToFileURL(repoPath('dist', 'tunnel', 'scavenge-pacer.js')).href;

const SCRIPT = `
import { noteRelayedBytes, PACE_BYTES } from ${JSON.stringify(PACER)};
const MIB = 1024 * 1024;
const held = () => Math.round((process.memoryUsage().arrayBuffers - base) / MIB);
const settle = (ms) => new Promise((r) => setTimeout(r, ms));
// What a relay leaves behind: socket-read-sized buffers outside the JS heap, already dead.
const dropDeadReads = (bytes) => { for (let n = 0; n < bytes; n += 64 * 1024) Buffer.allocUnsafeSlow(64 * 1024); };
const base = process.memoryUsage().arrayBuffers;
const out = {};
dropDeadReads(16 * MIB);
await settle(100);
out.idle = held();
noteRelayedBytes(PACE_BYTES - 1);
await settle(100);
out.belowPace = held();
noteRelayedBytes(1);
await settle(100);
out.atPace = held();
out.rounds = [];
for (let round = 0; round < 3; round++) {
  dropDeadReads(8 * MIB);
  for (let n = 0; n < PACE_BYTES; n += 16 * 1024) noteRelayedBytes(16 * 1024);
  await settle(100);
  out.rounds.push(held());
}
out.gcGlobal = typeof globalThis.gc;
process.stdout.write(JSON.stringify(out));
`;

describe('scavenge pacer', () => {
  it('frees dead external buffers each time PACE_BYTES have been relayed, and not before', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', SCRIPT]);
    const held = JSON.parse(stdout) as { idle: number; belowPace: number; atPace: number; rounds: number[]; gcGlobal: string };
    // Control: an idle process keeps them (nothing else would have freed them)…
    expect(held.idle).toBeGreaterThanOrEqual(15);
    expect(held.belowPace).toBeGreaterThanOrEqual(15);
    // …the pace frees them, and keeps doing so.
    expect(held.atPace).toBeLessThan(2);
    expect(held.rounds).toEqual([expect.any(Number), expect.any(Number), expect.any(Number)]);
    for (const mib of held.rounds) expect(mib).toBeLessThan(2);
    // The gc function it uses lives in a context of its own, not on the main global.
    expect(held.gcGlobal).toBe('undefined');
  });
});
