import { Duplex, type DuplexOptions } from 'node:stream';
import { AgentError, ErrorCodes, StreamResetCodes, type StreamResetCode } from '../errors.js';
import { ParkedChunks } from './parked-chunks.js';
import { STREAM_INITIAL_WINDOW, type ResponseHead, type StreamResponseFrame } from './protocol-stream.js';
import { SendQueue, declaredLength, type SendQueueHost, type SendTurn, type Sender, type SendQueueOwner, type TurnSink } from './send-queue.js';

/** What a stream needs from its multiplexer (stream-mux.ts), besides what its SendQueue needs. */
export interface StreamHost extends SendQueueHost {
  /** Sends a control frame now, ahead of any queued data (stream.window, stream.reset). */
  sendControl(frame: Record<string, unknown> & { type: string }): void;
  /** The stream is finished in both directions or reset: forget its id. */
  retire(stream: TunnelStream): void;
  /**
   * Sends a complete response (head, body, end: one response frame) of `stream` at once when no
   * other stream waits for its turn and the socket takes more; false when it must queue instead.
   */
  sendWholeNow(id: number, head: ResponseHead, body: Buffer | undefined): boolean;
  /** Bytes of credit this side keeps open for the peer per stream (≥ STREAM_INITIAL_WINDOW). */
  readonly windowBytes: number;
  /**
   * Takes up to `wanted` bytes of the connection's receive budget, the credit its streams may hold
   * above the initial window together; returns how many it got (0 when the budget is spent).
   */
  reserveWindow(wanted: number): number;
  /** Gives bytes taken with reserveWindow back to the budget. */
  releaseWindow(bytes: number): void;
  /**
   * The stream's parked bytes (peer data its consumer has not asked for) went from none to some:
   * the host compacts them if they are still there after a while (compactParked).
   */
  parked(stream: TunnelStream): void;
}

/** How soon half the initial window must arrive for a stream to grow its window (TunnelStream.sendsFast). */
const GROW_WINDOW_MS = 50;

/**
 * One proxied exchange as a Node Duplex: the readable side yields the peer's body bytes, the
 * writable side sends ours. Flow control is credit based in both directions:
 *
 * - receiving: the peer may send only what we granted. We grant more (stream.window) as our
 *   consumer drains what we hold, so a slow consumer stops the sender and this side buffers at
 *   most `windowBytes` per stream. Node's readable buffer holds at most one chunk; what the
 *   consumer has not asked for yet waits in `parked`, where the host compacts it when it stays
 *   (a chunk is a slice of the socket read it came in, and would keep that whole read alive).
 * - sending: `_write` cuts data into chunks of at most `chunkBytes` and queues them (a SendQueue,
 *   with the response head and the end in the same order: response frames and their held head are
 *   described there); the mux sends one chunk per stream per turn (round robin) while credit
 *   lasts. A write completes when its last chunk was handed to the socket, so a producer piping
 *   into the stream is paused by credit and by the socket's backpressure.
 *
 * `stream.reset` is sent at once by `destroy(err)` unless both halves finished.
 *
 *   open ──▶ (data…) ──▶ end sent ┐
 *            (data…) ──▶ end recv ┴─▶ retired          any ──reset (either side)──▶ destroyed
 */
export class TunnelStream extends Duplex implements Sender, SendQueueOwner {
  /** What we send, in order, and the credit for it. */
  private readonly out: SendQueue;
  /** Total bytes we allowed the peer to send, and bytes it sent. */
  private granted = STREAM_INITIAL_WINDOW;
  private received = 0;
  /** Of the window we keep open for the peer, the part above the initial one taken from the connection's budget. */
  private extraWindow = 0;
  /** `received` when the current rate reading began, and when (performance.now(); 0: not yet). */
  private rateMark = 0;
  private rateMarkAt = 0;
  /** Peer bytes behind the one chunk Node's buffer holds (see onPeerData). */
  private readonly parked = new ParkedChunks();
  /** The peer's end came behind parked bytes: it follows them into Node's buffer. */
  private endParked = false;
  private localEnded = false;
  private remoteEnded = false;
  private resetByPeer = false;
  private retired = false;
  private grantQueued = false;
  /** Set while the mux holds the stream in its ready list. */
  scheduled = false;
  /** The status of the response head we sent (agent side); 0 until one was sent. */
  sentStatus = 0;
  /** The peer's response head (gateway side), once it arrived. */
  response: StreamResponseFrame | undefined;
  /** The code our stream.reset carries when destroyed (`reset()` sets it). */
  private resetCode: StreamResetCode = StreamResetCodes.CANCELLED;
  /**
   * Opener side, set by a consumer that answers whole responses in one write (the gateway's
   * transparent proxy) before the response can arrive: a response frame that carries head, body
   * and end is kept as it is for `takeWholeBody` instead of going through the readable side.
   */
  takesWholeResponses = false;
  /** The body of a whole response kept for `takeWholeBody` (see takesWholeResponses). */
  private wholeBody: Buffer | undefined;
  /** Acceptor side: the response went out through sendWholeResponse; the stream closes once it left. */
  private answeredWhole = false;

  /**
   * `halfClosed` names a half that carries nothing from the start (`has_body: false`): 'local', our
   * writable half (the opener's request body), or 'remote', the peer's (the acceptor's request
   * body). Node builds that half ended, with no end(), push(null), `finish` or `end` per stream.
   */
  constructor(
    readonly id: number,
    private readonly host: StreamHost,
    halfClosed?: 'local' | 'remote',
  ) {
    // `readable` and `writable` are Duplex options since Node.js 15 that @types/node 20 lacks.
    const options: DuplexOptions & { readable: boolean; writable: boolean } = {
      allowHalfOpen: true,
      // Node's buffer takes one chunk at a time (see onPeerData); the window bounds what we hold.
      readableHighWaterMark: 1,
      writableHighWaterMark: host.chunkBytes,
      readable: halfClosed !== 'remote',
      writable: halfClosed !== 'local',
    };
    super(options);
    this.out = new SendQueue(id, host, this);
    if (halfClosed === 'local') this.localEnded = true;
    else if (halfClosed === 'remote') this.remoteEnded = true;
  }

  /** The stream itself (AnswerableExchange: a bodiless exchange becomes a stream here). */
  toStream(): TunnelStream {
    return this;
  }

  /** Destroys the stream with `err`, telling the peer why with `code` (a plain destroy says `cancelled`). */
  reset(code: StreamResetCode, err: Error): void {
    this.resetCode = code;
    this.destroy(err);
  }

  /** Queues the response head (agent side), ordered with the data: write the body after it. */
  sendResponse(status: number, headers: Record<string, string | string[]>): void {
    if (this.destroyed || this.localEnded) return;
    if (this.sentStatus === 0) this.sentStatus = status;
    this.out.pushResponse({ status, headers });
    this.host.schedule(this);
  }

  /**
   * Acceptor side: whether a response with these headers may be answered whole
   * (`sendWholeResponse`): the peer takes response frames, the request half has ended, nothing was
   * sent or queued yet, and the head declares a content-length that fits one frame.
   */
  canAnswerWhole(headers: Record<string, string | string[]>): boolean {
    return (
      this.host.combinedResponses &&
      this.remoteEnded &&
      !this.localEnded &&
      this.sentStatus === 0 &&
      this.out.isEmpty &&
      !this.destroyed &&
      !this.writableEnded &&
      declaredLength(headers) <= this.host.chunkBytes
    );
  }

  /** Largest body `sendWholeResponse` takes. */
  get wholeResponseLimit(): number {
    return this.host.chunkBytes;
  }

  /**
   * Acceptor side: a complete response — head, body and end. When canAnswerWhole and the body fits
   * wholeResponseLimit, they are queued at once and sent as one response frame without the
   * writable side (no write, end, `_final` or `finish`) — at once when the mux can send it
   * (sendWholeNow), else in the stream's turn —, and the stream closes (`close`) once the frame
   * left, both halves being done; otherwise they go through sendResponse and end().
   */
  sendWholeResponse(status: number, headers: Record<string, string | string[]>, body: Buffer | undefined): void {
    if (this.destroyed || this.localEnded) return;
    if (!this.canAnswerWhole(headers) || (body !== undefined && body.byteLength > this.host.chunkBytes)) {
      this.sendResponse(status, headers);
      this.end(body);
      return;
    }
    this.sentStatus = status;
    this.answeredWhole = true;
    const head = { status, headers };
    // Nothing queued ahead of it (canAnswerWhole): straight to the socket when the mux can take it,
    // without queue entries, a send turn or a splice of the queue.
    if (this.host.sendWholeNow(this.id, head, body)) {
      if (body !== undefined) this.out.credit -= body.byteLength;
      this.localEnded = true;
      this.maybeRetire();
      this.destroy();
      return;
    }
    this.out.pushResponse(head);
    if (body !== undefined && body.byteLength > 0) this.out.pushData(body, undefined);
    this.out.pushEnd(undefined);
    this.host.schedule(this);
  }

  /**
   * The peer's whole body, when its end already arrived: the body kept by onPeerWholeResponse
   * (takesWholeResponses), or else — nothing read from or piped the stream yet, e.g. from a
   * version-2 agent's stream.response, data and stream.end — the buffered bytes read out at once
   * (empty when there were none), so the caller can answer with one write instead of a pipe.
   * Undefined when the body is still on its way (or the stream failed): read the stream as usual.
   */
  takeWholeBody(): Buffer | undefined {
    const kept = this.wholeBody;
    if (kept !== undefined) {
      this.wholeBody = undefined;
      return kept;
    }
    if (!this.remoteEnded || this.destroyed || this.readableFlowing !== null || this.readableEnded) return undefined;
    // The parked bytes and the end join Node's buffer, and one read takes them all.
    for (const chunk of this.parked.takeAll()) this.push(chunk);
    if (this.endParked) this.push(null);
    const body = this.read() as Buffer | null;
    return body ?? Buffer.alloc(0);
  }

  // ── from the mux (peer frames) ────────────────────────────────────────────────────────────────

  /** A data frame from the peer. Returns false (and resets) when it exceeds the granted credit. */
  onPeerData(payload: Buffer): boolean {
    if (this.remoteEnded || this.received + payload.byteLength > this.granted) {
      this.reset(StreamResetCodes.PROTOCOL_ERROR, new AgentError(ErrorCodes.PROTOCOL, `stream ${this.id}: peer sent data beyond its credit or after stream.end`));
      return false;
    }
    this.received += payload.byteLength;
    if (payload.byteLength === 0) return true;
    // Into Node's buffer when it is empty (to a flowing consumer at once), else parked until the
    // consumer asks (_read).
    if (this.parked.isEmpty && this.readableLength === 0) this.push(payload);
    else {
      if (this.parked.isEmpty) this.host.parked(this);
      this.parked.push(payload);
    }
    this.scheduleGrant();
    return true;
  }

  /** Peer bytes received and not yet read: Node's buffer and the parked ones. */
  get unreadBytes(): number {
    return this.readableLength + this.parked.bytes;
  }

  /** Whether peer bytes wait behind Node's buffer (see onPeerData). */
  get hasParked(): boolean {
    return !this.parked.isEmpty;
  }

  /**
   * Copies the parked bytes that are slices of the socket reads they came in (each shared with other
   * streams' frames) into buffers of their own. The host calls it for a stream whose bytes stayed
   * parked (its consumer stalled), never on the way of a flowing one.
   */
  compactParked(): void {
    this.parked.compact();
  }

  onPeerWindow(credit: number): void {
    this.out.credit += credit;
    if (!this.out.isEmpty) this.host.schedule(this);
  }

  onPeerEnd(): void {
    if (this.remoteEnded) return;
    this.remoteEnded = true;
    if (this.parked.isEmpty) this.push(null);
    else this.endParked = true;
    this.maybeRetire();
  }

  onPeerReset(code: string, message: string | undefined): void {
    this.resetByPeer = true;
    this.destroy(peerResetError(this.id, code, message));
  }

  /**
   * A response frame with head, body and end, for a stream that takes whole responses and has
   * had no response yet. The body is kept for `takeWholeBody`, not pushed: no buffering, read,
   * `end` or autoDestroy per request; the stream retires here (its request half is ended), and
   * whoever holds it may drop it. Returns false (and resets) when the body exceeds the credit.
   */
  onPeerWholeResponse(frame: StreamResponseFrame, body: Buffer): boolean {
    if (this.remoteEnded || this.response !== undefined || this.received + body.byteLength > this.granted) {
      this.reset(StreamResetCodes.PROTOCOL_ERROR, new AgentError(ErrorCodes.PROTOCOL, `stream ${this.id}: peer sent data beyond its credit or after stream.end`));
      return false;
    }
    this.received += body.byteLength;
    this.remoteEnded = true;
    this.wholeBody = body;
    this.maybeRetire();
    this.onPeerResponse(frame);
    return true;
  }

  onPeerResponse(frame: StreamResponseFrame): void {
    if (this.response !== undefined) return;
    this.response = frame;
    this.emit('response', frame);
  }

  /** One scheduling turn: sends at most one chunk or one ordered frame. Called by the mux only. */
  sendTurn(sink: TurnSink): SendTurn {
    if (this.destroyed || this.out.isEmpty) return 'idle';
    if (!this.out.turn(sink, this)) return 'blocked';
    // Answered whole and both halves done: close now (no writable end will come to do it).
    if (this.answeredWhole && this.localEnded) {
      this.destroy();
      return 'idle';
    }
    return this.out.next();
  }

  /** Our stream.end left (SendQueueOwner). */
  onEndSent(): void {
    this.localEnded = true;
    this.maybeRetire();
  }

  // ── Duplex implementation ─────────────────────────────────────────────────────────────────────

  override _read(): void {
    // The consumer wants more: the next parked chunk (and the end, behind the last).
    const next = this.parked.shift();
    if (next !== undefined) {
      this.push(next);
      if (this.endParked && this.parked.isEmpty) this.push(null);
    }
    this.scheduleGrant();
  }

  private scheduleGrant(): void {
    // Node calls _read from read() *before* it removes the bytes being read from the buffer.
    // Deciding after the current read finished sees the real buffer.
    if (this.grantQueued) return;
    this.grantQueued = true;
    queueMicrotask(() => {
      this.grantQueued = false;
      this.grant();
    });
  }

  private grant(): void {
    if (this.remoteEnded || this.destroyed) return;
    // Keep the peer's outstanding credit topped up to the target minus what still sits unread.
    // The target is the initial window until the peer sends fast (sendsFast), then up to
    // windowBytes, as far as the connection's receive budget allows: small exchanges never cost a
    // stream.window frame, bulk ones get a larger window, slow long-lived ones (SSE, most
    // WebSockets) leave the budget to them, and a connection's streams together never hold more
    // than the budget above their initial windows (a side buffers at most that for stalled readers).
    if (STREAM_INITIAL_WINDOW + this.extraWindow < this.host.windowBytes && this.sendsFast()) this.growWindow();
    const target = STREAM_INITIAL_WINDOW + this.extraWindow;
    const outstanding = this.granted - this.received;
    const room = target - this.unreadBytes - outstanding;
    // Credit goes out in steps of 64 KiB (a quarter of the initial window): larger steps (a
    // quarter of the bulk window, 256 KiB) saved window frames but left the sender out of credit
    // more often, and measured 20-30% slower downloads (docs/proxy-performance.md). Node calls
    // _read once and not again until we push: when the peer has no credit left it will send
    // nothing, so then any room must be granted now or the stream stalls for good.
    if (room >= Math.min(target / 4, 64 * 1024) || (outstanding === 0 && room > 0)) {
      this.granted += room;
      this.host.sendControl({ type: 'stream.window', stream_id: this.id, credit: room });
    }
  }

  /**
   * Whether the peer sent half the initial window within GROW_WINDOW_MS (≥ 2.6 MB/s): then the
   * initial window, not the consumer, may be what limits it. Credit once granted cannot be taken
   * back, so a stream that grew holds its share of the budget until it ends; a slow stream (an
   * SSE feed, an idle WebSocket) that only added up to that much over minutes never takes it.
   */
  private sendsFast(): boolean {
    if (this.rateMarkAt === 0) this.rateMarkAt = performance.now();
    if (this.received - this.rateMark < STREAM_INITIAL_WINDOW / 2) return false;
    const now = performance.now();
    const fast = now - this.rateMarkAt <= GROW_WINDOW_MS;
    this.rateMark = this.received;
    this.rateMarkAt = now;
    return fast;
  }

  private growWindow(): void {
    const had = this.extraWindow;
    this.extraWindow += this.host.reserveWindow(this.host.windowBytes - STREAM_INITIAL_WINDOW - had);
    // What it holds goes back once the consumer read everything (the credit is spent and its bytes
    // left) or the stream is destroyed; not at stream.end, while unread bytes may still sit here.
    if (had === 0 && this.extraWindow > 0) this.once('end', () => this.giveBackWindow());
  }

  private giveBackWindow(): void {
    if (this.extraWindow === 0) return;
    this.host.releaseWindow(this.extraWindow);
    this.extraWindow = 0;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // Behind a held head, a small chunk is done at once, so an end() right after reaches _final this turn.
    if (this.out.write(chunk, callback)) this.host.schedule(this);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.out.pushEnd(callback);
    this.host.schedule(this);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // Queued chunks are dropped; their write callbacks are moot once the stream is destroyed.
    this.out.clear();
    this.parked.takeAll();
    const finishedCleanly = this.localEnded && this.remoteEnded;
    if (!this.resetByPeer && !this.retired && !finishedCleanly) {
      this.host.sendControl({
        type: 'stream.reset',
        stream_id: this.id,
        code: this.resetCode,
        ...(err ? { message: err.message.slice(0, 500) } : {}),
      });
    }
    this.retired = true;
    this.host.retire(this);
    this.giveBackWindow();
    callback(err);
  }

  private maybeRetire(): void {
    if (this.localEnded && this.remoteEnded && !this.retired) {
      this.retired = true;
      this.host.retire(this);
    }
  }
}

/** What a stream.reset from the peer fails the exchange with. */
export function peerResetError(id: number, code: string, message: string | undefined): AgentError {
  return new AgentError(ErrorCodes.UPSTREAM, `stream ${id} reset by the peer (${code}${message ? `: ${message}` : ''})`);
}
