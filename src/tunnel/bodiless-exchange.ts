import { AgentError, ErrorCodes, StreamResetCodes, type StreamResetCode } from '../errors.js';
import type { ResponseHead } from './protocol-stream.js';
import { SendQueue, declaredLength, type SendQueueHost, type SendQueueOwner, type SendTurn, type Sender, type TurnSink } from './send-queue.js';
import type { TunnelStream } from './tunnel-stream.js';

/**
 * An accepted exchange as the agent's proxy answers it: a TunnelStream, or a BodilessExchange
 * (whose request half carries nothing). Both emit `close` once when the exchange is over.
 */
export interface AnswerableExchange {
  readonly id: number;
  /** Finished or reset: nothing more can be sent. */
  readonly destroyed: boolean;
  /** The status of the response head sent; 0 until one was. */
  readonly sentStatus: number;
  /** Whether the request half has ended (always, for a bodiless exchange). */
  readonly readableEnded: boolean;
  resume(): unknown;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  once(event: 'close' | 'drain', listener: () => void): unknown;
  /** See TunnelStream.canAnswerWhole. */
  canAnswerWhole(headers: Record<string, string | string[]>): boolean;
  readonly wholeResponseLimit: number;
  /** A complete response (head, body, end): see TunnelStream.sendWholeResponse. */
  sendWholeResponse(status: number, headers: Record<string, string | string[]>, body: Buffer | undefined): void;
  /** The head of an answer that streams; its body follows with write() and end(). */
  sendResponse(status: number, headers: Record<string, string | string[]>): void;
  /** A piece of the answer's body; false when the caller should wait for `drain`. */
  write(chunk: Buffer): boolean;
  /** The answer is complete. */
  end(): unknown;
  /** Ends the exchange, telling the peer why with `code`. */
  reset(code: StreamResetCode, err: Error): void;
  /** Ends the exchange; the peer gets a stream.reset unless it was finished. */
  destroy(err?: Error): unknown;
  /** The exchange as a Node stream, for a consumer that pipes (a bodiless exchange becomes one here, before it sent anything). */
  toStream(): TunnelStream;
}

/** What a BodilessExchange needs from its mux. */
export interface BodilessHost extends SendQueueHost {
  /** Sends a complete response frame for `id` now, or returns false when it would have to queue. */
  sendWholeNow(id: number, head: ResponseHead, body: Buffer | undefined): boolean;
  sendControl(frame: Record<string, unknown> & { type: string }): void;
  /** The exchange is over: forget its id. */
  forgetExchange(exchange: BodilessExchange): void;
  /** The TunnelStream that takes the exchange over (registered under its id). */
  streamFor(exchange: BodilessExchange): TunnelStream;
}

/**
 * Acceptor side of a request whose half carries nothing (`has_body: false`, no upgrade): an
 * exchange without a Node stream. The common small answer is one response frame
 * (`sendWholeResponse` sends it at once when the mux is free); an answer that streams (SSE, a
 * body larger than one frame, or a whole answer behind a full socket) goes through a SendQueue of
 * the exchange's own, in turns of the mux's fair queue, with the peer's credit and a `drain` for
 * its writer, as a stream's writable half would: ~0.9 KiB less held per open answer than through
 * a TunnelStream (bench/held-heap.ts), and no Writable per chunk. Only a consumer that needs a
 * Node stream (the logs relay) turns it into a TunnelStream (`toStream`, before anything was
 * sent), which then carries everything, its `close` and errors reported here too.
 *
 * It is no EventEmitter: it keeps the few listeners an exchange gets (`close`, `error`, `drain`)
 * in fields of its own. An emitter's listener store, a dictionary object, and its arrays were most
 * of what the exchange of every small answer allocated and what an open one held beside its queue.
 *
 *   open ──sendWholeResponse (mux free)──▶ done (close)      open ──destroy / reset / peer reset──▶ done (close)
 *     ├──sendResponse / write / end, or a whole answer that waits──▶ streaming ──end sent──▶ done (close)
 *     └──toStream()──▶ TunnelStream ──its close──▶ close
 */
export class BodilessExchange implements AnswerableExchange, Sender, SendQueueOwner {
  readonly readableEnded = true;
  /** Set while the mux holds the exchange in its ready list. */
  scheduled = false;
  private stream: TunnelStream | undefined;
  /** What the answer sends when it streams; undefined until it does. */
  private out: SendQueue | undefined;
  private done = false;
  /** end() was called: nothing more is queued. */
  private ending = false;
  /** write() returned false: `drain` is due once the queued body left. */
  private needDrain = false;
  private status = 0;
  /** Listeners (see the class comment); `close` runs once, `drain` listeners once each. */
  private closeListeners: Array<() => void> | undefined;
  private errorListeners: Array<(err: Error) => void> | undefined;
  private drainListeners: Array<() => void> | undefined;

  constructor(
    readonly id: number,
    private readonly host: BodilessHost,
  ) {}

  on(event: 'close', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'close' | 'error', listener: (() => void) | ((err: Error) => void)): this {
    if (event === 'close') this.closeListeners = withListener(this.closeListeners, listener as () => void);
    else this.errorListeners = withListener(this.errorListeners, listener);
    return this;
  }

  /** `close` comes once, so once() is on() for it; a `drain` listener runs at the next drain only. */
  once(event: 'close' | 'drain', listener: () => void): this {
    if (event === 'close') this.closeListeners = withListener(this.closeListeners, listener);
    else this.drainListeners = withListener(this.drainListeners, listener);
    return this;
  }

  get destroyed(): boolean {
    return this.stream === undefined ? this.done : this.stream.destroyed;
  }

  get sentStatus(): number {
    return this.stream === undefined ? this.status : this.stream.sentStatus;
  }

  get wholeResponseLimit(): number {
    return this.host.chunkBytes;
  }

  /** Nothing to read: the request half carries nothing. */
  resume(): this {
    return this;
  }

  canAnswerWhole(headers: Record<string, string | string[]>): boolean {
    if (this.stream !== undefined) return this.stream.canAnswerWhole(headers);
    return this.untouched && this.host.combinedResponses && declaredLength(headers) <= this.host.chunkBytes;
  }

  /**
   * Nothing of the answer sent or queued, and not over. (The queue alone does not say it: a
   * stream.window that comes first makes one, to hold the credit.)
   */
  private get untouched(): boolean {
    return !this.done && this.status === 0 && (this.out === undefined || this.out.isEmpty);
  }

  sendWholeResponse(status: number, headers: Record<string, string | string[]>, body: Buffer | undefined): void {
    if (this.stream !== undefined) return this.stream.sendWholeResponse(status, headers, body);
    if (this.done || this.ending) return;
    if (this.canAnswerWhole(headers) && (body?.byteLength ?? 0) <= this.host.chunkBytes && this.host.sendWholeNow(this.id, { status, headers }, body)) {
      this.status = status;
      this.finish();
      return;
    }
    // Streams after all, or must wait its turn: queued, head, body and end (one frame when it fits).
    this.sendResponse(status, headers);
    if (body !== undefined && body.byteLength > 0) this.write(body);
    this.end();
  }

  sendResponse(status: number, headers: Record<string, string | string[]>): void {
    if (this.stream !== undefined) return this.stream.sendResponse(status, headers);
    if (this.done || this.ending) return;
    if (this.status === 0) this.status = status;
    this.sending().pushResponse({ status, headers });
    this.host.schedule(this);
  }

  write(chunk: Buffer): boolean {
    if (this.stream !== undefined) return this.stream.write(chunk);
    if (this.done || this.ending) return true;
    const out = this.sending();
    if (chunk.byteLength > 0 && out.write(chunk, undefined)) this.host.schedule(this);
    if (out.dataBytes < this.host.chunkBytes) return true;
    this.needDrain = true;
    return false;
  }

  end(): this {
    if (this.stream !== undefined) {
      this.stream.end();
      return this;
    }
    if (this.done || this.ending) return this;
    this.ending = true;
    this.sending().pushEnd(undefined);
    this.host.schedule(this);
    return this;
  }

  reset(code: StreamResetCode, err: Error): void {
    if (this.stream !== undefined) return this.stream.reset(code, err);
    this.cancel(code, err);
  }

  destroy(err?: Error): this {
    if (this.stream !== undefined) this.stream.destroy(err);
    else this.cancel(StreamResetCodes.CANCELLED, err);
    return this;
  }

  /** The peer reset the exchange, or the connection was lost: over, nothing is sent back. */
  onPeerGone(): void {
    if (this.stream === undefined && !this.done) this.finish();
  }

  /** More credit for the answer (a stream.window from the peer). */
  onPeerWindow(credit: number): void {
    if (this.stream !== undefined) return this.stream.onPeerWindow(credit);
    if (this.done) return;
    const out = this.sending();
    out.credit += credit;
    if (!out.isEmpty) this.host.schedule(this);
  }

  /** Body bytes from the peer, whose half carries nothing: a protocol error, answered with a reset. */
  onPeerData(payload: Buffer): void {
    if (this.stream !== undefined) {
      this.stream.onPeerData(payload);
      return;
    }
    this.cancel(StreamResetCodes.PROTOCOL_ERROR, new AgentError(ErrorCodes.PROTOCOL, `stream ${this.id}: peer sent data beyond its credit or after stream.end`));
  }

  toStream(): TunnelStream {
    if (this.stream === undefined) {
      if (!this.untouched) throw new Error(`stream ${this.id}: an exchange that answered or streams cannot become a stream`);
      const stream = this.host.streamFor(this);
      this.stream = stream;
      stream.on('error', (err: Error) => {
        for (const listener of this.errorListeners ?? []) listener(err);
      });
      stream.on('close', () => this.emitClose());
    }
    return this.stream;
  }

  // ── Sender, SendQueueOwner (the mux's send turns) ────────────────────────────────────────────

  sendTurn(sink: TurnSink): SendTurn {
    const out = this.out;
    if (this.done || out === undefined || out.isEmpty) return 'idle';
    if (!out.turn(sink, this)) return 'blocked';
    if (this.done) return 'idle';
    if (this.needDrain && out.dataBytes === 0) {
      this.needDrain = false;
      const drained = this.drainListeners;
      this.drainListeners = undefined;
      for (const listener of drained ?? []) listener();
    }
    return this.done ? 'idle' : out.next();
  }

  onEndSent(): void {
    this.finish();
  }

  /** The answer's queue, made when it first streams. */
  private sending(): SendQueue {
    this.out ??= new SendQueue(this.id, this.host, this);
    return this.out;
  }

  /** Over unless it already was: the peer gets a stream.reset with `code` and why. */
  private cancel(code: StreamResetCode, err: Error | undefined): void {
    if (this.done) return;
    this.host.sendControl({ type: 'stream.reset', stream_id: this.id, code, ...(err ? { message: err.message.slice(0, 500) } : {}) });
    this.finish();
  }

  private finish(): void {
    this.done = true;
    this.out?.clear();
    this.host.forgetExchange(this);
    // As a stream's: `close` comes after the current call stack, not inside it.
    process.nextTick(emitClose, this);
  }

  /** Runs the `close` listeners, once. */
  emitClose(): void {
    const listeners = this.closeListeners;
    this.closeListeners = undefined;
    for (const listener of listeners ?? []) listener();
  }
}

/**
 * `listeners` with `listener` added, in a new array of exactly that length: an exchange gets one
 * to three of each, and push() would give the array room for 17.
 */
function withListener<L>(listeners: L[] | undefined, listener: L): L[] {
  return listeners === undefined ? [listener] : [...listeners, listener];
}

function emitClose(exchange: BodilessExchange): void {
  exchange.emitClose();
}
