import { AgentError, ErrorCodes, StreamResetCodes } from '../errors.js';
import { MAX_CONTROL_FRAME_BYTES } from './protocol-constants.js';
import {
  MAX_STREAM_ID,
  STREAM_DEFAULT_WINDOW,
  STREAM_INITIAL_WINDOW,
  STREAM_ID_BYTES,
  STREAM_MAX_CHUNK,
  STREAM_RECEIVE_BUDGET,
  decodeDataFrame,
  decodeResponseFrame,
  encodeDataFrame,
  encodeResponseFrame,
  streamResponseFrame,
  type ResponseHead,
  type StreamEndFrame,
  type StreamResetFrame,
  type StreamResponseFrame,
  type StreamWindowFrame,
} from './protocol-stream.js';
import { checkResponseHead } from './stream-frame-check.js';
import { noteRelayedBytes } from './scavenge-pacer.js';
import { BodilessExchange, type BodilessHost } from './bodiless-exchange.js';
import { PendingResponse, type PendingHost, type ResponseWaiter } from './pending-response.js';
import type { Sender, TurnSink } from './send-queue.js';
import { TunnelStream, peerResetError, type StreamHost } from './tunnel-stream.js';

/** How often a mux looks for parked bytes to compact (StreamMux.sweep). */
const PARK_SWEEP_MS = 1000;

/** How the mux reaches the WebSocket of one connection. */
export interface MuxTransport {
  /** Sends a JSON text frame. A no-op once the socket is closing. */
  sendText(text: string): void;
  /**
   * Sends a binary frame; `written` runs once ws handed it to the OS (or the socket is gone). The
   * mux reuses the frame's buffer after that, so the transport must not keep it.
   */
  sendBinary(frame: Buffer, written: () => void): void;
}

export interface StreamMuxOptions {
  transport: MuxTransport;
  /** Largest data frame payload; default STREAM_MAX_CHUNK (16 KiB). */
  chunkBytes?: number;
  /** Receive credit kept open per stream; default STREAM_DEFAULT_WINDOW, 4 MiB (never below STREAM_INITIAL_WINDOW). */
  windowBytes?: number;
  /** Data bytes handed to ws and not yet written to the socket before the mux pauses; default 1 MiB. */
  socketHighWaterBytes?: number;
  /** Most concurrent streams accepted from the peer; default 10 000. */
  maxStreams?: number;
  /**
   * Receive credit this side's streams may keep open above their initial windows, together;
   * default STREAM_RECEIVE_BUDGET, 64 MiB (16 streams at the full 4 MiB window, the rest at 256 KiB).
   */
  receiveBudgetBytes?: number;
}

export type StreamFrame = StreamResponseFrame | StreamWindowFrame | StreamEndFrame | StreamResetFrame;

/**
 * Multiplexes TunnelStreams over one tunnel connection (one mux per WebSocket; a new connection
 * gets a new mux, and `closeAll` destroys every stream of the old one).
 *
 * Fairness: streams with sendable data wait in a round-robin list and each turn sends at most one
 * chunk (≤ chunkBytes), so a small response is never queued behind a large body. Backpressure: the
 * mux stops sending data while more than socketHighWaterBytes sit in ws/socket buffers and
 * resumes from ws's write callbacks, so memory stays bounded however fast the producers are.
 *
 * Ids: the gateway opens streams with strictly increasing ids; the agent accepts an id only if it
 * is larger than every id it accepted before on this connection.
 */
export class StreamMux implements StreamHost, PendingHost, BodilessHost {
  readonly chunkBytes: number;
  readonly windowBytes: number;
  private readonly highWater: number;
  private readonly maxStreams: number;
  /** What is left of the receive budget (options.receiveBudgetBytes). */
  private budgetLeft: number;
  /**
   * Streams with parked bytes, by the sweep count when their bytes last started to wait; swept every
   * PARK_SWEEP_MS while there are any (see sweep).
   */
  private readonly parkers = new Map<TunnelStream, number>();
  private sweeps = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  /**
   * Open exchanges by id: streams, and bodiless requests without one yet (opener side: a
   * PendingResponse; acceptor side: a BodilessExchange).
   */
  private readonly streams = new Map<number, TunnelStream | PendingResponse | BodilessExchange>();
  /** Streams and exchanges with something to send, in turn order. */
  private ready: Sender[] = [];
  private inflight = 0;
  private pumping = false;
  private nextId = 1;
  private lastAccepted = 0;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  private readonly framePool: FramePool;
  /** What a stream's send turn writes to; `turnId` is the stream whose turn it is. */
  private readonly sink: TurnSink;
  private turnId = 0;
  /**
   * Whether our response heads may leave as response frames: the agent sets it once the welcome
   * says protocol version 3 or later. Receiving them needs no switch.
   */
  combinedResponses = false;

  constructor(private readonly options: StreamMuxOptions) {
    this.chunkBytes = options.chunkBytes ?? STREAM_MAX_CHUNK;
    this.windowBytes = Math.max(STREAM_INITIAL_WINDOW, options.windowBytes ?? STREAM_DEFAULT_WINDOW);
    this.highWater = options.socketHighWaterBytes ?? 1024 * 1024;
    this.maxStreams = options.maxStreams ?? 10_000;
    this.budgetLeft = options.receiveBudgetBytes ?? STREAM_RECEIVE_BUDGET;
    // Enough buffers for everything the mux lets into the socket at once (highWater + one turn).
    this.framePool = new FramePool(STREAM_ID_BYTES + this.chunkBytes, Math.ceil(this.highWater / this.chunkBytes) + 2);
    this.sink = {
      control: (frame) => this.sendControl(frame),
      data: (payload) => this.sendData(this.turnId, payload),
      response: (head, body, end) => this.sendResponse(this.turnId, head, body, end),
    };
  }

  /** Exchanges not yet finished or reset (streams and pending responses). */
  get size(): number {
    return this.streams.size;
  }

  /**
   * Opener side: a new stream with the next id. The caller sends its stream.open first;
   * `withoutBody` when that says `has_body: false` (our half is closed from the start).
   */
  open(withoutBody = false): TunnelStream {
    const stream = new TunnelStream(this.takeId(), this, withoutBody ? 'local' : undefined);
    this.streams.set(stream.id, stream);
    return stream;
  }

  /**
   * Opener side of a request without a body (its stream.open, which the caller sends, says
   * `has_body: false`): no stream until the response needs one (pending-response.ts).
   */
  request(waiter: ResponseWaiter): PendingResponse {
    const pending = new PendingResponse(this.takeId(), waiter, this);
    this.streams.set(pending.id, pending);
    return pending;
  }

  private takeId(): number {
    if (this.closed) throw new AgentError(ErrorCodes.TUNNEL, 'the tunnel connection is closed', { retryable: true });
    const id = this.nextId++;
    if (id > MAX_STREAM_ID) throw new AgentError(ErrorCodes.TUNNEL, 'stream ids of this connection are exhausted', { retryable: true });
    return id;
  }

  /**
   * Acceptor side: the stream for a peer's stream.open, or undefined after answering a reset;
   * `withoutBody` when the open says `has_body: false` (the peer's half is closed from the start).
   */
  accept(id: number, withoutBody = false): TunnelStream | undefined {
    if (!this.mayAccept(id)) return undefined;
    const stream = new TunnelStream(id, this, withoutBody ? 'remote' : undefined);
    this.streams.set(id, stream);
    return stream;
  }

  /**
   * Acceptor side of a stream.open with `has_body: false` and no upgrade, to be answered without a
   * stream unless the answer streams (bodiless-exchange.ts); undefined after answering a reset.
   */
  acceptBodiless(id: number): BodilessExchange | undefined {
    if (!this.mayAccept(id)) return undefined;
    const exchange = new BodilessExchange(id, this);
    this.streams.set(id, exchange);
    return exchange;
  }

  /** Whether a peer's stream.open for `id` may be accepted; answers the refusal with a reset. */
  private mayAccept(id: number): boolean {
    if (this.closed) return false;
    const problem =
      id <= this.lastAccepted ? `stream id ${id} is not larger than the last one (${this.lastAccepted})` : this.streams.size >= this.maxStreams ? `more than ${this.maxStreams} concurrent streams` : undefined;
    if (problem !== undefined) {
      this.sendControl({ type: 'stream.reset', stream_id: id, code: StreamResetCodes.REFUSED, message: problem });
      return false;
    }
    this.lastAccepted = id;
    return true;
  }

  /** A binary frame from the peer. Returns a problem description when the frame is malformed. */
  handleData(frame: Buffer): string | undefined {
    noteRelayedBytes(frame.byteLength);
    if (frame.byteLength >= STREAM_ID_BYTES && frame.readUInt32BE(0) === 0) return this.handleResponseFrame(frame);
    const decoded = decodeDataFrame(frame);
    if (decoded === undefined) return 'binary frame shorter than its 4-byte stream id';
    // Data for a stream we no longer know (reset or finished a moment ago) is dropped.
    const entry = this.streams.get(decoded.streamId);
    if (entry instanceof PendingResponse) this.promote(entry, (stream) => stream.onPeerData(decoded.payload));
    else if (entry !== undefined) entry.onPeerData(decoded.payload);
    return undefined;
  }

  /** A response frame (head + first body chunk + maybe end, protocol 3); checked as stream.response. */
  private handleResponseFrame(frame: Buffer): string | undefined {
    const decoded = decodeResponseFrame(frame, MAX_CONTROL_FRAME_BYTES);
    if (typeof decoded === 'string') return decoded;
    const { streamId, head, body, end } = decoded;
    const checked = checkResponseHead(streamId, head);
    if (checked === undefined) {
      const raw = typeof head === 'object' && head !== null && !Array.isArray(head) ? { ...(head as Record<string, unknown>), type: 'stream.response', stream_id: streamId } : undefined;
      const parsed = streamResponseFrame.safeParse(raw);
      const issue = parsed.success ? undefined : parsed.error.issues[0];
      return `response frame for stream ${streamId}: the head is not a valid stream.response${issue === undefined ? ' (not an object)' : ` (${issue.path.join('.') || 'head'}: ${issue.message})`}`;
    }
    const entry = this.streams.get(streamId);
    if (entry === undefined) return undefined;
    if (entry instanceof PendingResponse) {
      // Within the credit a new stream grants: beyond it, the stream's own check resets it.
      if (end && body.byteLength <= STREAM_INITIAL_WINDOW) {
        this.forget(entry);
        entry.waiter.whole(checked, body);
      } else this.promote(entry, (stream) => feedResponse(stream, checked, body, end));
      return undefined;
    }
    // Response frames come from the agent. For an acceptor's exchange, whose peer half carries
    // nothing, body bytes are a protocol error (a reset) and a head or an end is moot, as for a stream.
    if (entry instanceof BodilessExchange) {
      if (body.byteLength > 0) entry.onPeerData(body);
      return undefined;
    }
    if (end && entry.takesWholeResponses && entry.response === undefined) {
      entry.onPeerWholeResponse(checked, body);
      return undefined;
    }
    feedResponse(entry, checked, body, end);
    return undefined;
  }

  /** A stream control frame from the peer; frames for unknown (finished) streams are ignored. */
  handleFrame(frame: StreamFrame): void {
    const entry = this.streams.get(frame.stream_id);
    if (entry === undefined) return;
    if (entry instanceof BodilessExchange) {
      // The peer's half carries nothing: its stream.response and stream.end are moot, as a stream's would be.
      if (frame.type === 'stream.reset') this.exchangeGone(entry);
      else if (frame.type === 'stream.window') entry.onPeerWindow(frame.credit);
      return;
    }
    if (!(entry instanceof PendingResponse)) return applyFrame(entry, frame);
    // Our half of a pending response carries nothing: credit for it is moot.
    if (frame.type === 'stream.window') return;
    if (frame.type === 'stream.reset') {
      this.forget(entry);
      entry.waiter.failed(peerResetError(entry.id, frame.code, frame.message));
      return;
    }
    this.promote(entry, (stream) => applyFrame(stream, frame));
  }

  /**
   * A pending response becomes a TunnelStream for a frame it cannot take whole: `feed` hands the
   * stream that frame, then the waiter gets the stream, in the state it would have had from the start.
   */
  private promote(pending: PendingResponse, feed: (stream: TunnelStream) => void): void {
    const stream = new TunnelStream(pending.id, this, 'local');
    pending.stream = stream;
    this.streams.set(pending.id, stream);
    feed(stream);
    pending.waiter.streamed(stream);
  }

  cancelPending(pending: PendingResponse): void {
    if (this.streams.get(pending.id) !== pending) return;
    this.forget(pending);
    this.sendControl({ type: 'stream.reset', stream_id: pending.id, code: StreamResetCodes.CANCELLED });
  }

  private forget(entry: PendingResponse | BodilessExchange): void {
    if (this.streams.get(entry.id) !== entry) return;
    this.streams.delete(entry.id);
    if (this.streams.size === 0) this.notifyIdle();
  }

  // ── BodilessHost ───────────────────────────────────────────────────────────────────────────────

  forgetExchange(exchange: BodilessExchange): void {
    this.forget(exchange);
  }

  streamFor(exchange: BodilessExchange): TunnelStream {
    const stream = new TunnelStream(exchange.id, this, 'remote');
    if (this.streams.get(exchange.id) === exchange) this.streams.set(exchange.id, stream);
    return stream;
  }

  /** A bodiless exchange whose peer reset it (or whose connection is gone): over, without a reset back. */
  private exchangeGone(exchange: BodilessExchange): void {
    this.forget(exchange);
    exchange.onPeerGone();
  }

  /** The connection is gone: every stream is destroyed with a TUNNEL error. Idempotent. */
  closeAll(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    const err = new AgentError(ErrorCodes.TUNNEL, `tunnel connection lost: ${reason}`, { retryable: true });
    const entries = [...this.streams.values()];
    this.streams.clear();
    this.ready = [];
    this.parkers.clear();
    this.stopSweeping();
    for (const entry of entries) {
      if (entry instanceof PendingResponse) entry.waiter.failed(err);
      else if (entry instanceof BodilessExchange) entry.onPeerGone();
      else entry.destroy(err);
    }
    this.notifyIdle();
  }

  /** Resolves once no stream is open, or when `deadline` aborts; true when idle. */
  async whenIdle(deadline: AbortSignal): Promise<boolean> {
    if (this.streams.size === 0) return true;
    if (deadline.aborted) return false;
    return new Promise((resolve) => {
      const onAbort = (): void => resolve(this.streams.size === 0);
      deadline.addEventListener('abort', onAbort, { once: true });
      this.idleWaiters.push(() => {
        deadline.removeEventListener('abort', onAbort);
        resolve(true);
      });
    });
  }

  /** Resets every open stream (stream.reset to the peer); the connection stays. */
  resetAll(reason: string): void {
    const err = new AgentError(ErrorCodes.ABORTED, reason);
    for (const entry of [...this.streams.values()]) {
      if (!(entry instanceof PendingResponse)) entry.destroy(err);
      else {
        this.cancelPending(entry);
        entry.waiter.failed(err);
      }
    }
  }

  // ── StreamHost ─────────────────────────────────────────────────────────────────────────────────

  schedule(sender: Sender): void {
    if (!sender.scheduled) {
      sender.scheduled = true;
      this.ready.push(sender);
    }
    this.pump();
  }

  sendControl(frame: Record<string, unknown> & { type: string }): void {
    if (!this.closed) this.options.transport.sendText(JSON.stringify(frame));
  }

  sendWholeNow(id: number, head: ResponseHead, body: Buffer | undefined): boolean {
    // Another stream's turn comes first, or the socket is full: the response waits in its queue.
    if (this.closed || this.pumping || this.ready.length > 0 || this.inflight >= this.highWater) return false;
    this.sendResponse(id, head, body, true);
    return true;
  }

  reserveWindow(wanted: number): number {
    const got = Math.min(wanted, this.budgetLeft);
    this.budgetLeft -= got;
    return got;
  }

  releaseWindow(bytes: number): void {
    this.budgetLeft += bytes;
  }

  parked(stream: TunnelStream): void {
    this.parkers.set(stream, this.sweeps);
    this.sweepTimer ??= setInterval(() => this.sweep(), PARK_SWEEP_MS).unref();
  }

  /**
   * Compacts the parked bytes of each stream whose consumer left them there since before the
   * previous sweep (one to two PARK_SWEEP_MS): a stalled reader then holds its bytes in one buffer
   * of its own instead of slices that keep whole socket reads alive. A flowing stream's bytes are
   * asked for within milliseconds and never copied.
   */
  private sweep(): void {
    this.sweeps++;
    for (const [stream, since] of this.parkers) {
      if (!stream.hasParked) this.parkers.delete(stream);
      else if (since <= this.sweeps - 2) stream.compactParked();
    }
    if (this.parkers.size === 0) this.stopSweeping();
  }

  private stopSweeping(): void {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  retire(stream: TunnelStream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    if (this.streams.size === 0) this.notifyIdle();
  }

  private pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      while (this.ready.length > 0 && this.inflight < this.highWater) {
        const sender = this.ready.shift() as Sender;
        this.turnId = sender.id;
        const turn = sender.sendTurn(this.sink);
        if (turn === 'more') this.ready.push(sender);
        else sender.scheduled = false;
      }
    } finally {
      this.pumping = false;
    }
  }

  private sendData(id: number, payload: Buffer): void {
    noteRelayedBytes(payload.byteLength);
    const buffer = this.framePool.take();
    const frame = encodeDataFrame(id, payload, buffer);
    const size = frame.byteLength;
    this.inflight += size;
    this.options.transport.sendBinary(frame, () => {
      this.framePool.give(buffer);
      this.inflight -= size;
      if (this.inflight < this.highWater / 2 && this.ready.length > 0) this.pump();
    });
  }

  private sendResponse(id: number, head: ResponseHead, body: Buffer | undefined, end: boolean): void {
    if (body !== undefined) noteRelayedBytes(body.byteLength);
    const frame = encodeResponseFrame(id, head, body, end);
    const size = frame.byteLength;
    this.inflight += size;
    this.options.transport.sendBinary(frame, () => {
      this.inflight -= size;
      if (this.inflight < this.highWater / 2 && this.ready.length > 0) this.pump();
    });
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

/** A stream control frame from the peer, to its stream. */
function applyFrame(stream: TunnelStream, frame: StreamFrame): void {
  switch (frame.type) {
    case 'stream.response':
      stream.onPeerResponse(frame);
      return;
    case 'stream.window':
      stream.onPeerWindow(frame.credit);
      return;
    case 'stream.end':
      stream.onPeerEnd();
      return;
    case 'stream.reset':
      stream.onPeerReset(frame.code, frame.message);
      return;
  }
}

/** A response frame's head, first body bytes and maybe end, to its stream. */
function feedResponse(stream: TunnelStream, head: StreamResponseFrame, body: Buffer, end: boolean): void {
  stream.onPeerResponse(head);
  if (body.byteLength > 0 && !stream.onPeerData(body)) return;
  if (end) stream.onPeerEnd();
}

/**
 * Data-frame buffers for reuse: a frame buffer goes back once ws handed it to the socket, so a
 * bulk transfer allocates (and the GC collects) almost nothing per chunk. Big Buffers live outside
 * the V8 heap, and every 64 MiB of them allocated starts a full mark-compact: at 64 KiB a chunk
 * that was dozens of major GCs per GiB proxied. Holds at most `max` idle buffers.
 */
class FramePool {
  private readonly idle: Buffer[] = [];

  constructor(
    private readonly size: number,
    private readonly max: number,
  ) {}

  take(): Buffer {
    return this.idle.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  give(buffer: Buffer): void {
    if (this.idle.length < this.max) this.idle.push(buffer);
  }
}
