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
