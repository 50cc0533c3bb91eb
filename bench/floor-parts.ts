import type { IncomingMessage } from 'node:http';
import type { Dispatcher } from 'undici';

/**
 * What bench/min-tunnel.ts and bench/raw-tunnel.ts, the floors of the tunnel's shape, share: the
 * turn's writes in one `writev`, the layout of their messages and the back's request through undici.
 */

/** A function that corks `socket` for the rest of the current turn (once per turn, uncorked in setImmediate). */
export function corkForTurn(socket: { cork(): void; uncork(): void }): () => void {
  let corked = false;
  return () => {
    if (corked) return;
    corked = true;
    socket.cork();
    setImmediate(() => {
      corked = false;
      socket.uncork();
    });
  };
}

/** [id: u32][JSON length: u32][JSON][body] in one buffer. */
export function frame(id: number, json: string, body?: Buffer): Buffer {
  const head = Buffer.from(json);
  const out = Buffer.allocUnsafe(8 + head.byteLength + (body?.byteLength ?? 0));
  out.writeUInt32BE(id, 0);
  out.writeUInt32BE(head.byteLength, 4);
  head.copy(out, 8);
  body?.copy(out, 8 + head.byteLength);
  return out;
}

/** The JSON a front sends for `req`: method, path and headers, less the hop's Connection. */
export function requestJson(req: IncomingMessage): string {
  const headers = { ...req.headers };
  delete headers.connection;
  return JSON.stringify({ method: req.method, path: req.url, headers });
}

/** How a back hands an answer to its front: status, headers and the whole body (none after an error). */
export type Answer = (status: number, headers: Record<string, string | string[]>, body?: Buffer) => void;

/** The request through undici's dispatch, its answer buffered whole. */
export function viaUndici(dispatcher: Dispatcher, origin: string, open: { method: Dispatcher.HttpMethod; path: string; headers: Record<string, string | string[]> }, answer: Answer): void {
  let status = 0;
  let headers: Record<string, string | string[]> = {};
  const chunks: Buffer[] = [];
  dispatcher.dispatch(
    { origin, path: open.path, method: open.method, headers: open.headers },
    {
      onRequestStart() {},
      onResponseStart(_controller, statusCode, responseHeaders) {
        status = statusCode;
        headers = responseHeaders as Record<string, string | string[]>;
      },
      onResponseData(_controller, chunk) {
        chunks.push(chunk);
      },
      onResponseEnd() {
        answer(status, headers, Buffer.concat(chunks));
      },
      onResponseError() {
        answer(502, {});
      },
    },
  );
}
