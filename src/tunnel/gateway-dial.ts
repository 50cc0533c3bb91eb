import type { ClientRequest, IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import { MAX_FRAME_BYTES } from './protocol.js';

export interface DialOptions {
  url: string;
  agentKey: string;
  /** Extra CA (PEM) trusted for the gateway's certificate; verification stays on. */
  caPem?: string;
  handshakeTimeoutMs: number;
  /** The gateway answered the upgrade with an HTTP error: why, for the tunnel state. */
  onRefused: (reason: string) => void;
}

/**
 * Opens the tunnel's WebSocket to the gateway: the agent key as a bearer token, TLS verified (extra
 * CA allowed, never switched off), frames up to MAX_FRAME_BYTES, no compression. An HTTP answer
 * instead of the upgrade is read (bounded) and reported through `onRefused`, then the socket is
 * terminated, which ends in the usual `close` event.
 */
export function dialGateway(options: DialOptions): WebSocket {
  const ws = new WebSocket(options.url, {
    headers: { authorization: `Bearer ${options.agentKey}` },
    ...(options.caPem === undefined ? {} : { ca: options.caPem }),
    rejectUnauthorized: true,
    handshakeTimeout: options.handshakeTimeoutMs,
    maxPayload: MAX_FRAME_BYTES,
    perMessageDeflate: false,
    ...(maskingIsMoot(options.url) ? { generateMask: zeroMask } : {}),
  });
  ws.on('unexpected-response', (req, res) => readRefusal(ws, req, res, options.onRefused));
  return ws;
}

function readRefusal(ws: WebSocket, req: ClientRequest, res: IncomingMessage, onRefused: (reason: string) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const finish = (): void => {
    const message = errorMessageOf(Buffer.concat(chunks).toString('utf8'));
    onRefused(
      res.statusCode === 401 || res.statusCode === 403
        ? `gateway refused the agent key (HTTP ${res.statusCode}${message === undefined ? '' : `: ${message}`}): check the ak- key`
        : `gateway answered the upgrade with HTTP ${res.statusCode ?? '?'}${message === undefined ? '' : `: ${message}`}`,
    );
    req.destroy();
    ws.terminate();
  };
  res.on('data', (chunk: Buffer) => {
    size += chunk.byteLength;
    if (size <= 4096) chunks.push(chunk);
  });
  res.once('end', finish);
  res.once('error', finish);
}

/**
 * Client frame masking (RFC 6455 §5.3) keeps attacker-chosen bytes from reaching intermediaries
 * that read the connection in clear text. Over TLS (wss) no intermediary reads it, and on loopback
 * there is none, so the agent sends an all-zero mask there: ws then skips the per-byte masking on
 * both ends, which is most of the CPU cost of proxied downloads. Plain ws:// to another host keeps
 * random masks.
 */
export function maskingIsMoot(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  return protocol === 'wss:' || hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

function errorMessageOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { error_message?: unknown };
    if (typeof parsed.error_message === 'string') return parsed.error_message;
  } catch {
    // not JSON: fall through to the raw text
  }
  const trimmed = body.trim().slice(0, 200);
  return trimmed === '' ? undefined : trimmed;
}

/** Why dialing failed, in words that name the fix (ws and socket codes stop here). */
export function describeDialError(err: Error, url: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  const where = new URL(url).host;
  if (code === 'ECONNREFUSED') return `cannot reach the gateway at ${where}: connection refused`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve the gateway host ${where}`;
  if (code !== undefined && /CERT|SELF_SIGNED|TLS|SSL/.test(code)) return `TLS verification of ${where} failed (${code}): configure the gateway CA file`;
  return `tunnel error talking to ${where}: ${err.message}`;
}
