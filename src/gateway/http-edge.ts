import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex, Readable, Writable } from 'node:stream';
import { rejectUpgrade } from './http-io.js';

/**
 * The gateway's HTTP edge: what a client that never authenticates can make the server hold or do
 * (docs/security.md, "HTTP edge"). Every number is a default of `startGateway({ http })`.
 */
export interface HttpEdgeLimits {
  /** A request head (request line + headers) must be complete within this, else 408 and closed. */
  headTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** A request body from which no byte arrived for this, while the gateway was reading it, is cut off. */
  bodyIdleTimeoutMs: number;
  /**
   * A proxied response or upgraded connection whose client took no byte for this, while bytes
   * waited for it, is cut off (as nginx's send_timeout, 60 s): a reader that stalls stops holding
   * what its stream was granted. 0: never.
   */
  sendStallTimeoutMs: number;
  /** Largest request head; larger: 431. */
  maxHeadBytes: number;
  /** On close, requests in progress get this long to finish before tunnels and connections are cut. */
  shutdownDrainMs: number;
}

export const DEFAULT_HTTP_EDGE_LIMITS: HttpEdgeLimits = {
  headTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  bodyIdleTimeoutMs: 60_000,
  sendStallTimeoutMs: 60_000,
  maxHeadBytes: 16 * 1024,
  shutdownDrainMs: 5_000,
};

/**
 * Requests in progress, for a graceful close: `track` each request; once `beginDrain()` (or
 * `drained(ms)`) ran, no connection is kept alive past the response it carries (one not yet started says `connection:
 * close`; one already streaming has its connection ended once it finished, so a client cannot send
 * its next request on a connection that the close is about to cut), and `drained` resolves when
 * none is left in progress or after `ms`, whichever comes first.
 */
export function inFlightRequests() {
  const open = new Set<ServerResponse>();
  let draining = false;
  let wake: (() => void) | undefined;
  const noKeepAlive = (res: ServerResponse): void => {
    if (!res.headersSent) {
      res.setHeader('connection', 'close');
      return;
    }
    const socket = res.socket; // detached from res by the time 'finish' is emitted
    res.once('finish', () => socket?.end());
  };
  /** From now on no connection is kept alive past its response. Idempotent. */
  const beginDrain = (): void => {
    if (draining) return;
    draining = true;
    for (const res of open) noKeepAlive(res);
  };
  return {
    track(res: ServerResponse): void {
      open.add(res);
      if (draining) noKeepAlive(res);
      // `on`: 'close' comes once, and once() would wrap and then remove the listener per request.
      res.on('close', () => {
        open.delete(res);
        if (open.size === 0) wake?.();
      });
    },
    beginDrain,
    async drained(ms: number): Promise<void> {
      beginDrain();
      if (open.size === 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    },
  };
}

const BASE = 'http://gateway';

/**
 * The request-target as a URL on the gateway, or undefined when it is not one the gateway serves
 * (400). Origin-form (`/path?query`) keeps its path exactly, `//x` included (it is a path here, not
 * a host); absolute-form (`http://host/path`, RFC 9112 §3.2.2) is reduced to its path and query;
 * asterisk- and authority-form, and anything `URL` cannot parse (`http://x:99999/`), are refused.
 * Never throws.
 */
export function parseRequestTarget(raw: string | undefined): URL | undefined {
  if (raw === undefined || raw === '') return undefined;
  try {
    if (raw.startsWith('/')) return new URL(`${BASE}${raw}`);
    const absolute = new URL(raw);
    if (absolute.protocol !== 'http:' && absolute.protocol !== 'https:') return undefined;
    return new URL(`${BASE}${absolute.pathname}${absolute.search}`);
  } catch {
    return undefined;
  }
}

/**
 * The answer to a request Node's parser refused (the server's `clientError`), from the parser's
 * code: 431 head too large, 408 head not complete in time, 400 anything else malformed; undefined
 * when the client is gone and nothing can be answered. Node's codes stop here.
 */
export function clientErrorAnswer(code: string | undefined, limits: HttpEdgeLimits): { status: number; message: string } | undefined {
  switch (code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return undefined;
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, message: `the request head exceeds ${limits.maxHeadBytes} bytes` };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, message: `the request head was not complete within ${limits.headTimeoutMs / 1000} s` };
    default:
      return { status: 400, message: 'malformed HTTP request' };
  }
}

/**
 * Answers a refused request on its raw socket (never throws) and closes it. When a response is
 * already under way on the socket (a body that broke after its head was answered), nothing is
 * written into it: the socket is just destroyed (as Node's own default does; `_httpMessage` is
 * the socket's in-flight ServerResponse).
 */
export function answerClientError(err: Error & { code?: string }, socket: Duplex, limits: HttpEdgeLimits): number | undefined {
  const answer = clientErrorAnswer(err.code, limits);
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (answer === undefined || !socket.writable || inFlight?.headersSent === true) {
    socket.destroy();
    return undefined;
  }
  rejectUpgrade(socket, answer.status, answer.message);
  return answer.status;
}

/**
 * Cuts off a request whose body stops arriving: when no byte came for `ms` while the gateway was
 * ready to read (its buffer not full: a body waiting for a slow upstream is not the client's
 * fault), `onIdle` runs; it is expected to destroy the request. Uses the socket's inactivity timer
 * (reset by every parsed chunk and every write), and leaves it unset once the body is complete.
 */
export function guardBodyIdle(req: IncomingMessage, res: ServerResponse, ms: number, onIdle: () => void): void {
  if (ms <= 0) return;
  const disarm = (): void => {
    if (!res.writableFinished) req.socket?.setTimeout(0);
  };
  res.setTimeout(ms, () => {
    if (req.complete || req.destroyed) {
      disarm();
      return;
    }
    if (req.readableLength >= req.readableHighWaterMark) {
      res.setTimeout(ms);
      return;
    }
    onIdle();
  });
  req.once('end', disarm);
}

/** Where lines caused by clients go, rate-limited (LogThrottle in connection-limits.ts). */
export interface ClientLog {
  warn(fields: Record<string, unknown>, message: string): void;
}

/**
 * Guards one relay to a client (sendStallGuard): `source` is piped into `dest`, the client's
 * response or socket; `facts` go into the log line when the client is cut off.
 */
export type StallGuard = (source: Readable, dest: Writable, facts: Record<string, unknown>) => void;

/**
 * The gateway's StallGuard: a client that takes no byte for `ms` while bytes wait for it has its
 * connection destroyed, with one line in `log`. 0: never.
 */
export function sendStallGuard(ms: number, log: ClientLog): StallGuard {
  return (source, dest, facts) =>
    guardSendStall(source, dest, ms, () => {
      log.warn({ ...facts, stalledMs: ms }, 'client stopped reading: connection closed');
      dest.destroy();
    });
}

/**
 * Cuts off a relay whose client stopped reading: when `source`, piped into `dest` (the client's
 * response or socket), was paused by that pipe and stayed paused with `dest` still full for `ms`,
 * `onStall` runs; it is expected to destroy `dest`. A client that reads slowly but keeps reading,
 * and a stream with nothing to send (an idle SSE feed), never stall. Per pause it costs a clock
 * read; a relay has at most one timer, set at the first pause and re-set only while it stays paused.
 */
function guardSendStall(source: Readable, dest: Writable, ms: number, onStall: () => void): void {
  if (ms <= 0) return;
  let pausedAt = 0;
  let timer: NodeJS.Timeout | undefined;
  const check = (): void => {
    timer = undefined;
    if (source.destroyed || dest.destroyed || source.readableFlowing !== false || !dest.writableNeedDrain) return;
    const waited = performance.now() - pausedAt;
    if (waited >= ms) onStall();
    else timer = setTimeout(check, ms - waited);
  };
  source.on('pause', () => {
    pausedAt = performance.now();
    timer ??= setTimeout(check, ms);
  });
  source.once('close', () => clearTimeout(timer));
}

/** Whether a request carries a body (Content-Length above 0, or Transfer-Encoding). */
export function hasRequestBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
