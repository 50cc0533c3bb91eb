/** Parked chunks up to this size are coalesced into buffers of their own (ParkedChunks.push). */
const SMALL_CHUNK_BYTES = 1024;
/** The largest of those buffers. */
const COALESCE_BYTES = 16 * 1024;

/**
 * A stream's received bytes that its consumer has not asked for yet, in arrival order
 * (TunnelStream parks what Node's readable buffer, which takes one chunk, cannot).
 *
 * Received chunks are slices of the socket reads ws parsed them from, shared with other streams'
 * frames, and a slice keeps its whole read alive. So:
 * - small chunks (≤ 1 KiB) are copied at once into a buffer of our own, the tail's while it has
 *   room: a peer that sends its credit as tiny frames would otherwise leave one Buffer object
 *   (~80 bytes of heap) per byte or so. Each such buffer is twice the one before it (from 1 KiB,
 *   at most 16 KiB), so a few parked events cost about their size;
 * - `compact()` copies the remaining slices into buffers of their own, for bytes that stay (the
 *   stream's mux calls it for a stalled reader; a flowing one never pays it).
 */
export class ParkedChunks {
  private chunks: Buffer[] = [];
  /** Bytes parked. */
  bytes = 0;
  /**
   * The buffer of our own that the last chunk is a view into (from its start) while small chunks
   * coalesce there; undefined when the last chunk is not such a view.
   */
  private coalescer: Buffer | undefined;

  get isEmpty(): boolean {
    return this.chunks.length === 0;
  }

  push(chunk: Buffer): void {
    this.bytes += chunk.byteLength;
    const size = chunk.byteLength;
    if (size > SMALL_CHUNK_BYTES) {
      this.chunks.push(chunk);
      this.coalescer = undefined;
      return;
    }
    const last = this.chunks.length - 1;
    const coalescer = this.coalescer;
    if (coalescer !== undefined && coalescer.byteLength - this.chunks[last]!.byteLength >= size) {
      const used = this.chunks[last]!.byteLength;
      chunk.copy(coalescer, used);
      this.chunks[last] = coalescer.subarray(0, used + size);
      return;
    }
    const own = Buffer.allocUnsafeSlow(coalescer === undefined ? SMALL_CHUNK_BYTES : Math.min(COALESCE_BYTES, 2 * coalescer.byteLength));
    chunk.copy(own);
    this.chunks.push(own.subarray(0, size));
    this.coalescer = own;
  }

  /** The oldest chunk, taken out; undefined when none is parked. */
  shift(): Buffer | undefined {
    const chunk = this.chunks.shift();
    if (chunk === undefined) return undefined;
    this.bytes -= chunk.byteLength;
    // The coalescer's view left with it: nothing more may be written into that buffer.
    if (this.chunks.length === 0) this.coalescer = undefined;
    return chunk;
  }

  /** Every chunk, taken out (and none left). */
  takeAll(): Buffer[] {
    const all = this.chunks;
    this.chunks = [];
    this.bytes = 0;
    this.coalescer = undefined;
    return all;
  }

  /**
   * Copies the chunks that are slices of larger buffers into buffers of their own (each run of them
   * into one), so that they no longer keep the buffers they came in alive; chunks already of their
   * own stay as they are.
   */
  compact(): void {
    const compacted: Buffer[] = [];
    let run: Buffer[] = [];
    let runBytes = 0;
    const endRun = (): void => {
      if (run.length === 0) return;
      const own = Buffer.allocUnsafeSlow(runBytes);
      let offset = 0;
      for (const chunk of run) offset += chunk.copy(own, offset);
      compacted.push(own);
      run = [];
      runBytes = 0;
    };
    for (const chunk of this.chunks) {
      if (chunk.buffer.byteLength === chunk.byteLength) {
        endRun();
        compacted.push(chunk);
      } else {
        run.push(chunk);
        runBytes += chunk.byteLength;
      }
    }
    endRun();
    this.chunks = compacted;
    this.coalescer = undefined;
  }
}
