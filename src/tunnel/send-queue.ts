import { STREAM_INITIAL_WINDOW, type ResponseHead } from './protocol-stream.js';

/** How one scheduling turn hands frames to the mux. */
export interface TurnSink {
  control(frame: Record<string, unknown> & { type: string }): void;
  data(payload: Buffer): void;
  /** A response frame: head, first body bytes (may be empty) and whether the end follows. */
  response(head: ResponseHead, body: Buffer | undefined, end: boolean): void;
}

/** Result of one scheduling turn. */
export type SendTurn = 'more' | 'blocked' | 'idle';

/** What the mux's fair send queue takes turns from (StreamMux.schedule): a TunnelStream, or a bodiless exchange that streams its answer. */
export interface Sender {
  readonly id: number;
  /** Set while the mux holds the sender in its ready list. */
  scheduled: boolean;
  /** One scheduling turn: sends at most one chunk or one ordered frame. Called by the mux only. */
  sendTurn(sink: TurnSink): SendTurn;
}

/** What a SendQueue needs from its mux. */
export interface SendQueueHost {
  readonly chunkBytes: number;
  /** Whether the peer takes response frames (protocol version 3): see SendQueue. */
  readonly combinedResponses: boolean;
}

/** Told when the queue's stream.end left (before the write callbacks of what left with it run). */
export interface SendQueueOwner {
  onEndSent(): void;
}

type Outgoing =
  | { kind: 'data'; buf: Buffer; done: ((err?: Error | null) => void) | undefined }
  | { kind: 'response'; head: ResponseHead }
  | { kind: 'end'; done: ((err?: Error | null) => void) | undefined };

/**
 * What one end of an exchange sends, in order, and the credit the peer granted for it: a response
 * head, body chunks of at most `chunkBytes`, the end. The mux sends one item per turn while credit
 * lasts (`turn`); the head and the end travel in the same order as the data, so they never
 * overtake it.
 *
 * Response frames (protocol 3, `host.combinedResponses`): a queued response head is held until the
 * end is queued, a chunk's worth of body is queued, or `releaseHead()` (the owner's next event-loop
 * turn, unless the head's content-length says the body fits one frame), whichever comes first, and
 * then leaves with the body queued behind it (≤ chunkBytes) and the end in one frame. A small
 * response is then one WebSocket message, delivered whole or lost whole when the connection drops;
 * a streamed one (SSE) waits one turn at most.
 */
export class SendQueue {
  /** Bytes we may still send (credit granted by the peer). */
  credit = STREAM_INITIAL_WINDOW;
  /** Body bytes queued and not sent yet. */
  dataBytes = 0;
  private readonly items: Outgoing[] = [];
  /** A queued response head waits (combined responses only) until this turns true. */
  private headReleased = false;

  constructor(
    private readonly id: number,
    private readonly host: SendQueueHost,
  ) {}

  get isEmpty(): boolean {
    return this.items.length === 0;
  }

  pushResponse(head: ResponseHead): void {
    this.items.push({ kind: 'response', head });
  }

  /** The held head may leave alone from now on (the owner's next event-loop turn came). */
  releaseHead(): void {
    this.headReleased = true;
  }

  /** Queues a piece of body as it is (≤ chunkBytes); `done` runs once it left. */
  pushData(buf: Buffer, done: ((err?: Error | null) => void) | undefined): void {
    this.items.push({ kind: 'data', buf, done });
    this.dataBytes += buf.byteLength;
  }

  /**
   * Queues `chunk` cut into pieces of at most chunkBytes; `done` runs once the last piece left.
   * Behind a held head, a chunk that keeps the queued body under one frame is done at once (returns
   * false: nothing to schedule), so a `write(); end()` of a small body reaches the end in the same turn.
   */
  write(chunk: Buffer, done: ((err?: Error | null) => void) | undefined): boolean {
    const max = this.host.chunkBytes;
    if (this.holdingHead() && this.dataBytes + chunk.byteLength < max) {
      this.pushData(chunk, undefined);
      done?.();
      return false;
    }
    if (chunk.byteLength <= max) this.pushData(chunk, done);
    else {
      for (let off = 0; off < chunk.byteLength; off += max) {
        this.pushData(chunk.subarray(off, off + max), off + max >= chunk.byteLength ? done : undefined);
      }
    }
    return true;
  }

  pushEnd(done: ((err?: Error | null) => void) | undefined): void {
    this.items.push({ kind: 'end', done });
  }

  /** Drops everything queued; write callbacks are moot once the exchange is gone. */
  clear(): void {
    this.items.length = 0;
    this.dataBytes = 0;
  }

  /**
   * One turn: sends the head (with what may go with it), one chunk, or the end. Returns false when
   * nothing could be sent (a held head, or no credit for the next chunk). `owner.onEndSent` runs
   * when the end left.
   */
  turn(sink: TurnSink, owner: SendQueueOwner): boolean {
    const first = this.items[0];
    if (first === undefined) return false;
    if (first.kind === 'response') {
      if (this.host.combinedResponses) return this.sendCombinedResponse(first.head, sink, owner);
      this.items.shift();
      sink.control({ type: 'stream.response', stream_id: this.id, status: first.head.status, headers: first.head.headers });
    } else if (first.kind === 'end') {
      this.items.shift();
      sink.control({ type: 'stream.end', stream_id: this.id });
      owner.onEndSent();
      first.done?.();
    } else {
      if (this.credit <= 0) return false;
      const n = Math.min(first.buf.byteLength, this.credit);
      const piece = n === first.buf.byteLength ? first.buf : first.buf.subarray(0, n);
      this.credit -= n;
      this.dataBytes -= n;
      sink.data(piece);
      if (piece === first.buf) {
        this.items.shift();
        first.done?.();
      } else {
        first.buf = first.buf.subarray(n);
      }
    }
    return true;
  }

  /** After a turn: whether more can be sent now, waits for credit, or nothing is queued. */
  next(): SendTurn {
    const first = this.items[0];
    if (first === undefined) return 'idle';
    return first.kind === 'data' && this.credit <= 0 ? 'blocked' : 'more';
  }

  /** True while the queue starts with a response head that still waits for its body and end. */
  private holdingHead(): boolean {
    return !this.headReleased && this.host.combinedResponses && this.items[0]?.kind === 'response';
  }

  /**
   * Sends the head at the front of the queue as a response frame with the data and end behind it,
   * or returns false to keep holding it (see the class comment).
   */
  private sendCombinedResponse(head: ResponseHead, sink: TurnSink, owner: SendQueueOwner): boolean {
    const limit = Math.min(this.host.chunkBytes, this.credit);
    let taken = 0;
    let bytes = 0;
    for (let i = 1; i < this.items.length; i++) {
      const item = this.items[i] as Outgoing;
      if (item.kind !== 'data' || taken !== i - 1 || bytes + item.buf.byteLength > limit) break;
      taken = i;
      bytes += item.buf.byteLength;
    }
    const after = this.items[taken + 1];
    const end = after?.kind === 'end';
    if (!this.headReleased && !end && this.dataBytes < this.host.chunkBytes) return false;
    this.headReleased = true;
    // The head, `taken` data items and maybe the end leave the queue (one splice; the common small
    // response is head + one chunk + end, so the body is that chunk itself).
    const items = this.items.splice(0, taken + 1 + (end ? 1 : 0));
    let body: Buffer | undefined;
    if (taken === 1) body = (items[1] as Extract<Outgoing, { kind: 'data' }>).buf;
    else if (taken > 1) {
      const chunks: Buffer[] = [];
      for (let i = 1; i <= taken; i++) chunks.push((items[i] as Extract<Outgoing, { kind: 'data' }>).buf);
      body = Buffer.concat(chunks, bytes);
    }
    this.credit -= bytes;
    this.dataBytes -= bytes;
    sink.response(head, body, end);
    if (end) owner.onEndSent();
    for (let i = 1; i < items.length; i++) {
      const item = items[i] as Outgoing;
      if (item.kind !== 'response') item.done?.();
    }
    return true;
  }
}
