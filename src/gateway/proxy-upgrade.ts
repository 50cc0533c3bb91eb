import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { stripHopByHop, type WireHeaders } from '../tunnel/http-headers.js';
import type { TunnelStream } from '../tunnel/tunnel-stream.js';
import { authenticateApi, type KeySet } from './auth.js';
import { rejectUpgrade } from './http-io.js';
import { forwardedHeaders } from './forwarded-headers.js';
import { RUNTIME, openProxyStream, responseHead, runtimeTarget, type ProxyRoutesDeps } from './routes-proxy.js';

export interface ProxyUpgradeDeps extends Pick<ProxyRoutesDeps, 'store' | 'hub' | 'guardStall'> {
  apiKeys: KeySet;
}

/**
 * WebSocket pass-through for the transparent proxy (`GET /r/containers/{slug}/…` with
 * `Upgrade: websocket`, e.g. the live-progress socket of a ComfyUI-style UI). The request goes to a
 * ready replica as a `stream.open` with `upgrade: true`; when the service answers 101 the client
 * gets the service's 101 (its Sec-WebSocket-Accept, protocol and extensions) and from then on the
 * stream carries the raw bytes both ways, with the tunnel's flow control. Any other answer is
 * relayed as a plain HTTP response and the connection closes.
 *
 * Auth is the REST API's (`Authorization: Bearer sk-…`/`dk-…`), checked first; the key is never
 * relayed. Serves every upgrade that is not the agent endpoint: anything outside the proxy is 404.
 */
export function proxyUpgradeHandler(deps: ProxyUpgradeDeps): (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => void {
  return (req, socket, head, url) => {
    socket.on('error', () => undefined);
    const auth = authenticateApi(req.headers.authorization, deps.apiKeys);
    if (!auth.ok) return rejectUpgrade(socket, auth.status, auth.message);
    if (!url.pathname.startsWith(`${RUNTIME}/`)) return rejectUpgrade(socket, 404, `no WebSocket endpoint at ${url.pathname.slice(0, 200)}`);
    if (req.method !== 'GET' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      return rejectUpgrade(socket, 400, 'only WebSocket upgrades (GET with Upgrade: websocket) are passed through to services');
    }
    const { slug, path } = runtimeTarget(url);
    if (slug === undefined) return rejectUpgrade(socket, 400, 'the service slug in the path is not valid percent-encoding');
    const opened = openProxyStream(deps, slug, { method: 'GET', path, headers: forwardedHeaders(req), upgrade: true });
    if ('result' in opened) return rejectUpgrade(socket, opened.result.status, errorText(opened.result.body), opened.result.headers);
    const { stream } = opened;
    socket.once('close', () => stream.destroy());
    // A client that stops reading its WebSocket is cut off as a stalled response is.
    deps.guardStall(stream, socket, { slug, relay: 'websocket', remote: req.socket.remoteAddress });
    relay(stream, socket, head).catch(() => {
      stream.destroy();
      socket.destroy();
    });
  };
}

async function relay(stream: TunnelStream, socket: Duplex, head: Buffer): Promise<void> {
  const answer = await responseHead(stream);
  if (socket.destroyed) return;
  if ('error' in answer) return rejectUpgrade(socket, 502, `the agent could not answer: ${answer.error}`);
  stream.once('error', () => socket.destroy());
  if (answer.status === 101) {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${headerLines(answer.headers)}\r\n`);
    // Bytes the client sent right behind its request belong to the upgraded connection.
    if (head.byteLength > 0) stream.write(head);
    socket.pipe(stream);
    stream.pipe(socket);
    return;
  }
  // The service declined the upgrade: its answer goes back as a plain response, then we close.
  socket.write(`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? ''}\r\n${headerLines(answer.headers)}Connection: close\r\n\r\n`);
  stream.end();
  stream.pipe(socket);
}

/** Header lines for a raw response head; fields that could not be written safely are left out. */
function headerLines(headers: WireHeaders): string {
  let out = '';
  for (const [name, value] of Object.entries(stripHopByHop(headers))) {
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) continue;
    for (const v of Array.isArray(value) ? value : [value]) if (!/[\r\n\0]/.test(v)) out += `${name}: ${v}\r\n`;
  }
  return out;
}

function errorText(body: unknown): string {
  const message = (body as { error_message?: unknown } | undefined)?.error_message;
  return typeof message === 'string' ? message : 'the request could not be proxied';
}
