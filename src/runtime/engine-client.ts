import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { addAbortSignal } from 'node:stream';

/**
 * The Docker Engine API's HTTP transport, on node:http: a unix socket or a plain-HTTP tcp
 * host:port (no TLS, no ssh://). It replaced docker-modem, which loads ssh2 for ssh:// engines the
 * agent does not support: ~5 MB of the agent's RSS (docs/runtime-footprint.md).
 *
 * `send` resolves with the response as soon as its headers arrived and its status is one the
 * caller accepts; the caller reads (or streams) the body. Any other status rejects with
 * EngineHttpError carrying `statusCode` and the engine's `{"message": …}` answer (`json`), the
 * shape docker-errors.ts translates. Socket errors reject as Node raised them (`code` ENOENT,
 * ECONNREFUSED, …). `signal` aborts the request at any time, the response body included.
 * Deadlines and error translation are engine-request.ts's job.
 */

export type EngineAddress = { socketPath: string } | { host: string; port: number };

export interface EngineHttpRequest {
  method: 'GET' | 'POST' | 'DELETE' | 'PUT';
  /** Path without a query string, e.g. `/containers/abc/start`. */
  path: string;
  /** Query parameters; see encodeQuery. */
  query?: Record<string, unknown>;
  /** Sent as JSON. */
  body?: unknown;
  /** Status codes that count as success. */
  ok: readonly number[];
  /** Registry credentials, sent as X-Registry-Auth (see encodeRegistryAuth). */
  registryAuth?: Record<string, unknown>;
}

/** Error bodies are short JSON; read no more of one than this. */
const ERROR_BODY_LIMIT = 64 * 1024;

/** A non-success answer of the engine. */
export class EngineHttpError extends Error {
  override readonly name = 'EngineHttpError';
  /** The engine's answer: the parsed JSON (normally `{"message": …}`), else the body text. */
  readonly json: unknown;

  constructor(
    readonly statusCode: number,
    body: string,
  ) {
    const json = parseJsonOr(body);
    const message = json !== null && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string' ? (json as { message: string }).message : body.trim();
    super(`the Docker Engine answered HTTP ${statusCode}${message === '' ? ' with an empty body' : `: ${message}`}`);
    this.json = json;
  }
}

/**
 * Docker's query conventions (as docker-modem encoded them): an array repeats its key, an object
 * (e.g. `filters`) is sent as JSON, `undefined`/`null` are left out, anything else is String()ed.
 */
export function encodeQuery(query: Record<string, unknown> | undefined): string {
  if (query === undefined) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) for (const item of value) params.append(key, String(item));
    else if (typeof value === 'object') params.append(key, JSON.stringify(value));
    else params.append(key, String(value as string | number | boolean));
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

/** X-Registry-Auth: base64url of the auth JSON ({username, password, serveraddress} or {identitytoken, …}). */
export function encodeRegistryAuth(auth: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(auth)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

/** Reads a whole (bounded) answer. Rejects if the stream errors or is destroyed first. */
export async function readBody(res: IncomingMessage, limit = Number.POSITIVE_INFINITY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (size >= limit) continue; // keep draining so the socket can be reused
    chunks.push(chunk);
    size += chunk.length;
  }
  const body = Buffer.concat(chunks);
  return body.length > limit ? body.subarray(0, limit) : body;
}

export class EngineClient {
  constructor(private readonly address: EngineAddress) {}

  send(request: EngineHttpRequest, signal: AbortSignal): Promise<IncomingMessage> {
    const headers: OutgoingHttpHeaders = {};
    let payload: string | undefined;
    if (request.body !== undefined) {
      payload = JSON.stringify(request.body);
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    } else if (request.method === 'POST' || request.method === 'PUT') {
      headers['Content-Length'] = 0;
    }
    if (request.registryAuth !== undefined) headers['X-Registry-Auth'] = encodeRegistryAuth(request.registryAuth);
    const target =
      'socketPath' in this.address
        ? { socketPath: this.address.socketPath }
        : // URL.hostname keeps an IPv6 literal's brackets; node:http wants the bare address.
          { host: this.address.host.replace(/^\[(.*)\]$/, '$1'), port: this.address.port };

    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest({ ...target, method: request.method, path: request.path + encodeQuery(request.query), headers, signal });
      // Not once: a request can error again after its response (e.g. destroyed by the abort signal).
      req.on('error', reject);
      req.once('response', (res) => {
        // http.request's `signal` does not reliably reach a response already handed out: make it
        // destroy the body too (a stream being read, or an error body being drained).
        addAbortSignal(signal, res);
        const status = res.statusCode ?? 0;
        if (request.ok.includes(status)) {
          resolve(res);
          return;
        }
        readBody(res, ERROR_BODY_LIMIT).then((body) => reject(new EngineHttpError(status, body.toString('utf8'))), reject);
      });
      req.end(payload);
    });
  }
}

function parseJsonOr(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
