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
  /** Puts a sender on the fair send queue (idempotent). */
  schedule(sender: Sender): void;
}

/** Told when the queue's stream.end left (before the write callbacks of what left with it run). */
export interface SendQueueOwner {
  onEndSent(): void;
}

/** A queued item, linked to the one behind it. */
type Outgoing = (
  | { kind: 'data'; buf: Buffer; done: ((err?: Error | null) => void) | undefined }
  | { kind: 'response'; head: ResponseHead }
  | { kind: 'end'; done: ((err?: Error | null) => void) | undefined }
) & { next: Outgoing | undefined };

type DataItem = Extract<Outgoing, { kind: 'data' }>;

/**
 * What one end of an exchange sends, in order, and the credit the peer granted for it: a response
 * head, body chunks of at most `chunkBytes`, the end. The mux sends one item per turn while credit
 * lasts (`turn`); the head and the end travel in the same order as the data, so they never
 * overtake it.
 *
 * Response frames (protocol 3, `host.combinedResponses`): a queued response head is held until the
 * end is queued, a chunk's worth of body is queued, or — unless its content-length says the body
 * fits one frame, when it waits for the end — the next event-loop turn (setImmediate, which then
 * schedules the queue's sender), whichever comes first, and then leaves with the body queued behind
 * it (≤ chunkBytes) and the end in one frame. A small response is then one WebSocket message,
 * delivered whole or lost whole when the connection drops; a streamed one (SSE) waits one turn at
 * most.
 *
 * The items are a linked list (each one is an object anyway): an empty queue holds nothing, where
 * an array would keep the backing store of its largest moment (17 slots after its first push) for
 * as long as its stream stays open.
 */
export class SendQueue {
  /** Bytes we may still send (credit granted by the peer). */
  credit = STREAM_INITIAL_WINDOW;
  /** Body bytes queued and not sent yet. */
  dataBytes = 0;
  private first: Outgoing | undefined;
  private last: Outgoing | undefined;
  /** A queued response head waits (combined responses only) until this turns true. */
  private headReleased = false;

  /** `sender` is the stream or exchange whose queue this is (scheduled when a held head is released). */
  constructor(
    private readonly id: number,
    private readonly host: SendQueueHost,
    private readonly sender: Sender,
  ) {}

  get isEmpty(): boolean {
    return this.first === undefined;
  }

  pushResponse(head: ResponseHead): void {
    this.append({ kind: 'response', head, next: undefined });
    // A body declared to fit one frame is waited for whole: its head never travels alone. Any
    // other head waits one event-loop turn at most. (A queue that was cleared, its sender gone,
    // schedules nothing.)
    if (this.host.combinedResponses && !(declaredLength(head.headers) <= this.host.chunkBytes)) {
      setImmediate(() => {
        this.headReleased = true;
        if (!this.isEmpty) this.host.schedule(this.sender);
      });
    }
  }

  /** Queues a piece of body as it is (≤ chunkBytes); `done` runs once it left. */
  pushData(buf: Buffer, done: ((err?: Error | null) => void) | undefined): void {
    this.append({ kind: 'data', buf, done, next: undefined });
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
    this.append({ kind: 'end', done, next: undefined });
  }

  /** Drops everything queued; write callbacks are moot once the exchange is gone. */
  clear(): void {
    this.first = undefined;
    this.last = undefined;
    this.dataBytes = 0;
  }

  /**
   * One turn: sends the head (with what may go with it), one chunk, or the end. Returns false when
   * nothing could be sent (a held head, or no credit for the next chunk). `owner.onEndSent` runs
   * when the end left.
   */
  turn(sink: TurnSink, owner: SendQueueOwner): boolean {
    const first = this.first;
    if (first === undefined) return false;
    if (first.kind === 'response') {
      if (this.host.combinedResponses) return this.sendCombinedResponse(first.head, sink, owner);
      this.removeUpTo(first);
      sink.control({ type: 'stream.response', stream_id: this.id, status: first.head.status, headers: first.head.headers });
    } else if (first.kind === 'end') {
      this.removeUpTo(first);
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
        this.removeUpTo(first);
        first.done?.();
      } else {
        first.buf = first.buf.subarray(n);
      }
    }
    return true;
  }

  /** After a turn: whether more can be sent now, waits for credit, or nothing is queued. */
  next(): SendTurn {
    const first = this.first;
    if (first === undefined) return 'idle';
    return first.kind === 'data' && this.credit <= 0 ? 'blocked' : 'more';
  }

  /** True while the queue starts with a response head that still waits for its body and end. */
  private holdingHead(): boolean {
    return !this.headReleased && this.host.combinedResponses && this.first?.kind === 'response';
  }

  private append(item: Outgoing): void {
    if (this.last === undefined) this.first = item;
    else this.last.next = item;
    this.last = item;
  }

  /** Takes the items from the first up to `item` out of the queue. */
  private removeUpTo(item: Outgoing): void {
    this.first = item.next;
    if (this.first === undefined) this.last = undefined;
  }

  /**
   * Sends the head at the front of the queue as a response frame with the data and end behind it,
   * or returns false to keep holding it (see the class comment).
   */
  private sendCombinedResponse(head: ResponseHead, sink: TurnSink, owner: SendQueueOwner): boolean {
    const limit = Math.min(this.host.chunkBytes, this.credit);
    const headItem = this.first as Outgoing;
    // The data items right behind the head that fit one frame (`lastTaken` the last of them), and
    // what comes after them.
    let taken = 0;
    let bytes = 0;
    let lastTaken: Outgoing = headItem;
    let after = headItem.next;
    while (after?.kind === 'data' && bytes + after.buf.byteLength <= limit) {
      taken++;
      bytes += after.buf.byteLength;
      lastTaken = after;
      after = after.next;
    }
    const end = after?.kind === 'end';
    if (!this.headReleased && !end && this.dataBytes < this.host.chunkBytes) return false;
    this.headReleased = true;
    // The head, `taken` data items and maybe the end leave the queue (the common small response is
    // head + one chunk + end, so the body is that chunk itself).
    this.removeUpTo(end ? (after as Outgoing) : lastTaken);
    let body: Buffer | undefined;
    if (taken === 1) body = (headItem.next as DataItem).buf;
    else if (taken > 1) {
      const chunks: Buffer[] = [];
      for (let item = headItem.next as DataItem, i = 0; i < taken; i++, item = item.next as DataItem) chunks.push(item.buf);
      body = Buffer.concat(chunks, bytes);
    }
    this.credit -= bytes;
    this.dataBytes -= bytes;
    sink.response(head, body, end);
    if (end) owner.onEndSent();
    for (let item = headItem.next, i = 0; item !== undefined && i < taken + (end ? 1 : 0); item = item.next, i++) {
      if (item.kind !== 'response') item.done?.();
    }
    return true;
  }
}

/** The content-length a response head declares; NaN when absent or not a plain number. */
export function declaredLength(headers: Record<string, string | string[]>): number {
  const value = headers['content-length'];
  return typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
}
