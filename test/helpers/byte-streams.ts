import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

/**
 * `total` bytes served from one reused 1 MiB buffer: a large upload body without a large
 * allocation. `progress.consumed` counts what the consumer has pulled so far.
 */
export function zeros(total: number, progress: { consumed: number } = { consumed: 0 }): Readable {
  const block = Buffer.alloc(1024 * 1024);
  let left = total;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const n = Math.min(left, block.length);
      left -= n;
      progress.consumed += n;
      this.push(n === block.length ? block : block.subarray(0, n));
    },
  });
}

/**
 * `total` deterministic pseudo-random bytes for `seed` (xorshift32), in odd-sized chunks so that
 * chunk, frame and window boundaries never line up: what a relay mixes up or reuses too early
 * shows in the sha-256 (`patternSha256`).
 */
export function pattern(total: number, seed: number): Readable {
  let state = seed >>> 0 || 1;
  let left = total;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const n = Math.min(left, 61 * 1024 + 7);
      const chunk = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        chunk[i] = state & 0xff;
      }
      left -= n;
      this.push(chunk);
    },
  });
}

/** sha-256 (hex) of a stream of bytes. */
export async function sha256Of(stream: AsyncIterable<Uint8Array>): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** sha-256 (hex) of `pattern(total, seed)`. */
export async function patternSha256(total: number, seed: number): Promise<string> {
  return (await sha256Of(pattern(total, seed))).sha256;
}
