import { EventEmitter } from 'node:events';
import { StreamResetCodes } from '../errors.js';
import type { ResponseHead } from './protocol-stream.js';
import { declaredLength, type TunnelStream } from './tunnel-stream.js';

/**
 * An accepted exchange as the agent's proxy answers it: a TunnelStream, or a BodilessExchange
 * until its answer needs a stream. Both emit `close` once when the exchange is over.
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
  once(event: 'close', listener: () => void): unknown;
  /** See TunnelStream.canAnswerWhole. */
  canAnswerWhole(headers: Record<string, string | string[]>): boolean;
  readonly wholeResponseLimit: number;
  /** A complete response (head, body, end): see TunnelStream.sendWholeResponse. */
  sendWholeResponse(status: number, headers: Record<string, string | string[]>, body: Buffer | undefined): void;
  /** Ends the exchange; the peer gets a stream.reset unless it was finished. */
  destroy(err?: Error): unknown;
  /** The exchange as a stream, for an answer that streams (a BodilessExchange becomes one here). */
  toStream(): TunnelStream;
}

/** What a BodilessExchange needs from its mux. */
export interface BodilessHost {
  readonly chunkBytes: number;
  readonly combinedResponses: boolean;
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
 * exchange without a Node stream while its answer is one response frame, the common small answer
 * (`sendWholeResponse` sends it at once when the mux is free). An answer that streams, or waits
 * behind a full socket, turns it into a TunnelStream (`toStream`), which then carries everything,
 * its `close` and errors reported here too.
 *
 *   open ──sendWholeResponse (mux free)──▶ done (close)      open ──destroy / peer reset──▶ done (close)
 *     └──toStream()──▶ TunnelStream ──its close──▶ close
 */
export class BodilessExchange extends EventEmitter implements AnswerableExchange {
  readonly readableEnded = true;
  private stream: TunnelStream | undefined;
  private done = false;
  private status = 0;

  constructor(
    readonly id: number,
    private readonly host: BodilessHost,
  ) {
    super();
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
    return !this.done && this.status === 0 && this.host.combinedResponses && declaredLength(headers) <= this.host.chunkBytes;
  }

  sendWholeResponse(status: number, headers: Record<string, string | string[]>, body: Buffer | undefined): void {
    if (this.stream === undefined && this.done) return;
    if (this.stream === undefined && this.canAnswerWhole(headers) && (body?.byteLength ?? 0) <= this.host.chunkBytes && this.host.sendWholeNow(this.id, { status, headers }, body)) {
      this.status = status;
      this.finish();
      return;
    }
    // Streams after all, or must wait its turn: the stream queues it (or falls back to write/end).
    this.toStream().sendWholeResponse(status, headers, body);
  }

  destroy(err?: Error): this {
    if (this.stream !== undefined) {
      this.stream.destroy(err);
      return this;
    }
    if (this.done) return this;
    this.host.sendControl({ type: 'stream.reset', stream_id: this.id, code: StreamResetCodes.CANCELLED, ...(err ? { message: err.message.slice(0, 500) } : {}) });
    this.finish();
    return this;
  }

  /** The peer reset the exchange, or the connection was lost: over, nothing is sent back. */
  onPeerGone(): void {
    if (this.stream === undefined && !this.done) this.finish();
  }

  toStream(): TunnelStream {
    if (this.stream === undefined) {
      const stream = this.host.streamFor(this);
      this.stream = stream;
      stream.on('error', (err) => {
        if (this.listenerCount('error') > 0) this.emit('error', err);
      });
      stream.on('close', () => this.emit('close'));
    }
    return this.stream;
  }

  private finish(): void {
    this.done = true;
    this.host.forgetExchange(this);
    // As a stream's: `close` comes after the current call stack, not inside it.
    process.nextTick(emitClose, this);
  }
}

function emitClose(exchange: BodilessExchange): void {
  exchange.emit('close');
}
