import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** What a route handler answers: a status and a JSON body. */
export interface HttpResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/**
 * Returned by a handler that wrote the response itself (the proxy streams): the server then
 * neither writes JSON nor drains the request body.
 */
export const STREAMED: HttpResult = Object.freeze({ status: 0, body: undefined });

/** The error shape of the Cyberun API: `{"error_message": "…"}`. */
export function fail(status: number, message: string): HttpResult {
  return { status, body: { error_message: message } };
}

export function ok(body: unknown): HttpResult {
  return { status: 200, body };
}

export function sendJson(res: ServerResponse, result: HttpResult): void {
  const text = JSON.stringify(result.body);
  res.writeHead(result.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...result.headers,
  });
  res.end(text);
}

/**
 * Answers an HTTP upgrade request (which has no ServerResponse), or a request the parser refused,
 * with a JSON error on the raw socket and closes it. The socket is destroyed 2 s later at the
 * latest: a peer that never closes its half cannot keep it open.
 */
export function rejectUpgrade(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error_message: message });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n${extra}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  const timer = setTimeout(() => socket.destroy(), 2000);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

export type BodyResult = { ok: true; value: unknown } | { ok: false; result: HttpResult };

/**
 * Reads a JSON request body of at most `limitBytes`. An empty body reads as `undefined` (the route
 * decides whether that is acceptable). Never throws.
 */
export async function readJsonBody(req: IncomingMessage, limitBytes: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (Number.isFinite(declared) && declared > limitBytes) {
    req.resume();
    return { ok: false, result: fail(413, `request body is ${declared} bytes; the limit is ${limitBytes}`) };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      const buf = chunk as Buffer;
      size += buf.byteLength;
      if (size > limitBytes) {
        req.resume();
        return { ok: false, result: fail(413, `request body exceeds the limit of ${limitBytes} bytes`) };
      }
      chunks.push(buf);
    }
  } catch (err) {
    return { ok: false, result: fail(400, `request body could not be read: ${(err as Error).message}`) };
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, result: fail(400, `request body is not valid JSON: ${(err as Error).message}`) };
  }
}

export interface Page {
  currentPage: number;
  perPage: number;
}

export const DEFAULT_PER_PAGE = 20;
export const MAX_PER_PAGE = 100;

/** `current_page` (default 1) and `per_page` (default 20, 1–100) from a query string. */
export function parsePage(query: URLSearchParams): { ok: true; page: Page } | { ok: false; result: HttpResult } {
  const current = parseIntParam(query.get('current_page'), 1, 1, Number.MAX_SAFE_INTEGER, 'current_page', 'an integer ≥ 1');
  if (typeof current === 'string') return { ok: false, result: fail(400, current) };
  const per = parseIntParam(query.get('per_page'), DEFAULT_PER_PAGE, 1, MAX_PER_PAGE, 'per_page', `an integer from 1 to ${MAX_PER_PAGE}`);
  if (typeof per === 'string') return { ok: false, result: fail(400, per) };
  return { ok: true, page: { currentPage: current, perPage: per } };
}

function parseIntParam(raw: string | null, fallback: number, min: number, max: number, name: string, want: string): number | string {
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) return `${name} "${raw}" must be ${want}`;
  const n = Number(raw);
  if (n < min || n > max) return `${name} ${raw} must be ${want}`;
  return n;
}

export interface PageMeta {
  current_page: number;
  per_page: number;
  total_count: number;
}

/**
 * One page of `items` under `listKey`, with Cyberun's `page_meta`. The list's key is the caller's:
 * Cyberun's reference names it for the agents list (`agent_list`); the container lists keep the
 * project's `data` (docs/gateway.md, "Fidelity to Cyberun's public reference").
 */
export function paginate<K extends string, T>(listKey: K, items: readonly T[], page: Page): { [P in K]: T[] } & { page_meta: PageMeta } {
  const start = (page.currentPage - 1) * page.perPage;
  const list = { [listKey]: items.slice(start, start + page.perPage) } as { [P in K]: T[] };
  return { ...list, page_meta: { current_page: page.currentPage, per_page: page.perPage, total_count: items.length } };
}
