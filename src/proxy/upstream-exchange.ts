import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { AgentError, ErrorCodes, StreamResetCodes } from '../errors.js';
import type { AnswerableExchange } from '../tunnel/bodiless-exchange.js';
import type { TunnelStream } from '../tunnel/tunnel-stream.js';
import { stripHopByHop, type WireHeaders } from '../tunnel/http-headers.js';

/**
 * How an exchange ended: relayed (the response, or the upgraded connection, went into the stream,
 * or the stream went away), or failed before any response head was sent, so the caller can still
 * answer with an error status.
 */
export type ExchangeResult = { relayed: true } | { relayed: false; error: AgentError };

/**
 * One upstream HTTP exchange relayed into a tunnel stream through undici's dispatch API (the
 * handler undici's own proxy helpers use): no response Readable, no AbortSignal, no promise per
 * chunk. The head goes out as `stream.response`, body chunks are written to the stream as they
 * arrive, and the stream's backpressure pauses the upstream socket; a small answer to a bodiless
 * request (content-length within one frame) is held and sent whole at its end instead. A stream
 * closed early (the client went away, the tunnel was lost) aborts the upstream request.
 *
 *   dispatch ──onResponseStart──▶ stream.response ──onResponseData*──▶ body ──onResponseEnd──▶ end
 *       │                                                   └──error──▶ stream reset (upstream_failed)
 *       └──error before the head──▶ result {relayed: false} (the caller answers 502/504/413)
 *
 * `request` is undici's (origin, path with query as sent, method, headers, body, timeouts); with
 * `upgrade` set, a 101 answer turns the stream into a raw byte pipe to the upstream socket.
 * `settled` runs once (a callback, not a promise: this runs for every proxied request, and nothing
 * on the way needs to wait for it but the caller's bookkeeping): `relayed` as soon as a streamed
 * response's head or an upgrade went into the stream — the rest is the stream's, whose close ends
 * it — or at the end of a response held whole, or with the failure before any head. The handler
 * then lets go of `settled`: what the caller keeps in it for a retry (the request, the replica)
 * is not held for as long as an SSE stream stays open.
 */
export function relayExchange(dispatcher: Dispatcher, stream: AnswerableExchange, request: Dispatcher.DispatchOptions, settled: (result: ExchangeResult) => void): void {
  dispatcher.dispatch(request, new ExchangeHandler(stream, request.upgrade !== undefined && request.upgrade !== null, settled));
}

/** A small response held by the handler until its end, to leave whole (see onResponseStart). */
interface HeldResponse {
  status: number;
  headers: WireHeaders;
  chunks: Buffer[];
  bytes: number;
}

/**
 * Lets go of the response head as undici read it. undici keeps the head's raw fields on the
 * controller for the whole exchange: a Buffer per name and per value, each a view of the socket
 * read that carried the head, which they keep alive. The handler has the parsed fields and needs
 * nothing else, and a long exchange (an SSE stream, an upgraded connection) would otherwise hold
 * them as long as it stays open: 1.6 of the 12.6 KiB of live heap per open SSE stream
 * (`bench/sse-heap.ts`, docs/proxy-performance.md).
 */
function releaseRawHead(controller: Dispatcher.DispatchController): void {
  controller.rawHeaders = null;
}

class ExchangeHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private headSent = false;
  /** The exchange with the upstream is over (ended, failed, or handed to an upgraded socket). */
  private over = false;
  private held: HeldResponse | undefined;
  /** The caller's callback until it ran. */
  private settled: ((result: ExchangeResult) => void) | undefined;

  constructor(
    private readonly stream: AnswerableExchange,
    private readonly upgrade: boolean,
    settled: (result: ExchangeResult) => void,
  ) {
    this.settled = settled;
    // `on`: 'close' comes once, and once() would wrap and then remove the listener per request.
    stream.on('close', this.onStreamClose);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.stream.destroyed) controller.abort(gone());
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[]>): void {
    releaseRawHead(controller);
    // 1xx informational answers (100 Continue, 103 Early Hints) are not relayed.
    if (statusCode < 200 || this.stream.destroyed) return;
    // An upgrade the upstream declined is a plain response; the raw-byte half is not needed.
    if (this.upgrade) this.stream.toStream().resume();
    const clean = stripHopByHop(headers);
    // The common small answer to a bodiless request (a content-length that fits one frame): held
    // here and sent whole at its end, one response frame without the stream's writable side. The
    // head counts as sent: a failure before the end resets the stream, as it did with the head
    // queued in it.
    if (!this.upgrade && this.stream.canAnswerWhole(clean)) {
      this.headSent = true;
      this.held = { status: statusCode, headers: clean, chunks: [], bytes: 0 };
      return;
    }
    this.sendHead(statusCode, clean);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.stream.destroyed) return;
    const held = this.held;
    if (held !== undefined) {
      held.chunks.push(chunk);
      held.bytes += chunk.byteLength;
      if (held.bytes <= this.stream.wholeResponseLimit) return;
      // More than one frame after all: the stream takes head and body as usual.
      this.held = undefined;
      this.sendHead(held.status, held.headers);
      chunk = held.chunks.length === 1 ? chunk : Buffer.concat(held.chunks, held.bytes);
    }
    if (this.stream.write(chunk)) return;
    controller.pause();
    this.stream.once('drain', () => controller.resume());
  }

  onResponseEnd(): void {
    const held = this.held;
    if (held === undefined) this.stream.end();
    else {
      this.held = undefined;
      this.stream.sendWholeResponse(held.status, held.headers, held.chunks.length <= 1 ? held.chunks[0] : Buffer.concat(held.chunks, held.bytes));
    }
    this.finish({ relayed: true });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.held = undefined;
    if (this.stream.destroyed) return this.finish({ relayed: true });
    if (!this.headSent) return this.finish({ relayed: false, error: translateUpstreamError(error) });
    this.stream.reset(StreamResetCodes.UPSTREAM_FAILED, new AgentError(ErrorCodes.UPSTREAM, `the upstream failed while streaming its body: ${error.message}`, { cause: error }));
    this.finish({ relayed: true });
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[]>, socket: Duplex): void {
    releaseRawHead(controller);
    const stream = this.stream.toStream();
    if (stream.destroyed) {
      socket.destroy();
      return this.finish({ relayed: true });
    }
    // Upgrade and Connection are hop-by-hop: the gateway writes its own to the client.
    this.sendHead(statusCode, stripHopByHop(headers));
    spliceUpgraded(stream, socket);
    this.finish({ relayed: true });
  }

  /** The head of a response that streams: the caller's part is done (see relayExchange). */
  private sendHead(status: number, headers: WireHeaders): void {
    this.headSent = true;
    this.stream.sendResponse(status, headers);
    this.settle({ relayed: true });
  }

  /** The upstream exchange is over (nothing left to abort when the stream closes); tells the caller. */
  private finish(result: ExchangeResult): void {
    this.over = true;
    this.settle(result);
  }

  /** Tells the caller how the exchange went, once, and lets go of its callback. */
  private settle(result: ExchangeResult): void {
    const settled = this.settled;
    if (settled === undefined) return;
    this.settled = undefined;
    // A failure is answered (or retried on another replica, a new dispatch) once undici's callback
    // that reported it has returned; a relayed exchange only needs its bookkeeping, done at once.
    if (result.relayed) settled(result);
    else queueMicrotask(() => settled(result));
  }

  private readonly onStreamClose = (): void => {
    if (this.over) return;
    // Aborting makes undici call onResponseError, which finishes the exchange.
    if (this.controller !== undefined) this.controller.abort(gone());
  };
}

/**
 * An upstream failure before any response head, in the project's codes (undici and socket codes
 * stop here): UPSTREAM_REFUSED when the connection was refused (nothing was sent, so another
 * replica may take the request), UPSTREAM_TIMEOUT when connecting or the head took too long, an
 * AgentError raised on the way (the address policy's UPSTREAM_ADDRESS_REFUSED) as it is, else UPSTREAM.
 */
export function translateUpstreamError(err: Error): AgentError {
  if (err instanceof AgentError) return err;
  const code = (err as { code?: unknown }).code;
  const cause = (err as { cause?: { message?: unknown } }).cause;
  const causeText = typeof cause?.message === 'string' && !err.message.includes(cause.message) ? ` (${cause.message})` : '';
  const detail = `${err.message}${causeText}${typeof code === 'string' && !err.message.includes(code) ? ` [${code}]` : ''}`;
  if (code === 'ECONNREFUSED') return new AgentError(ErrorCodes.UPSTREAM_REFUSED, `connection refused: ${detail}`, { cause: err, retryable: true });
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') {
    return new AgentError(ErrorCodes.UPSTREAM_TIMEOUT, `no answer in time: ${detail}`, { cause: err, retryable: true });
  }
  return new AgentError(ErrorCodes.UPSTREAM, detail, { cause: err });
}

function gone(): AgentError {
  return new AgentError(ErrorCodes.ABORTED, 'the proxied stream closed before the upstream exchange finished');
}

/**
 * Joins an upgraded upstream socket and the tunnel stream both ways, with backpressure; half
 * closes travel through, and the end or failure of either side closes the other.
 */
function spliceUpgraded(stream: TunnelStream, socket: Duplex): void {
  socket.on('error', (err) => stream.reset(StreamResetCodes.UPSTREAM_FAILED, new AgentError(ErrorCodes.UPSTREAM, `the upgraded upstream connection failed: ${err.message}`, { cause: err })));
  socket.once('close', () => {
    if (!stream.destroyed && !(stream.writableFinished && stream.readableEnded)) stream.end();
  });
  stream.once('close', () => socket.destroy());
  socket.pipe(stream);
  stream.pipe(socket);
}
