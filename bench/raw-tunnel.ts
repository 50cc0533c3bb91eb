import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import { corkForTurn, frame, requestJson, viaUndici, type Answer } from './floor-parts.js';

/**
 * The tunnel's shape without two of its libraries: what two Node.js processes reach relaying a
 * small GET with node:http in front and nothing else from a library — no WebSocket (a plain TCP
 * connection between the processes, each message a u32 length and its bytes) and no undici (the
 * back writes the request head to a pooled keep-alive socket itself and reads a Content-Length
 * response with a hand-written loop). Otherwise as bench/min-tunnel.ts: one message each way per
 * request (request: id + JSON of method, path and headers; response: id + JSON head + whole body),
 * a turn's messages in one write (cork, uncork in setImmediate), no auth, routing, flow control
 * or checks. Run as two child processes:
 *
 *   node raw-tunnel.js front                                           prints its HTTP port (the back's port next)
 *   node raw-tunnel.js back <upstream host:port> <back port> [undici]  dials the front, prints "connected"
 *
 * With `undici`, the back dispatches through undici as bench/min-tunnel.ts does (only ws is left
 * out): with the minimal tunnel beside it, the two libraries' costs come apart.
 *
 * Bench-only: the back's HTTP client knows only Content-Length answers (the bench's /health) and
 * ends a request it cannot read with 502 (which fails the bench's load clients: its figures are of
 * answered requests only). `bench/proxy-floor.ts raw` measures it beside the minimal
 * tunnel: the difference is what ws and undici cost on this path, which decides whether the
 * tunnel's throughput goal is reachable with them (they are the brief's choices; leaving them
 * needs the user's reason, docs/proxy-performance.md).
 */
const [role, upstreamArg, backPortArg, backClient] = process.argv.slice(2);
process.once('SIGTERM', () => process.exit(0));

/** Writes length-prefixed messages on `socket`, corked for the rest of the turn. */
function corkedWriter(socket: Socket): (message: Buffer) => void {
  const cork = corkForTurn(socket);
  return (message) => {
    cork();
    const prefix = Buffer.allocUnsafe(4);
    prefix.writeUInt32BE(message.byteLength, 0);
    socket.write(prefix);
    socket.write(message);
  };
}

/** Calls `onMessage` with each length-prefixed message read from `socket`. */
function readMessages(socket: Socket, onMessage: (message: Buffer) => void): void {
  let pending: Buffer | undefined;
  socket.on('data', (chunk: Buffer) => {
    let buf = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    while (buf.byteLength >= 4) {
      const length = buf.readUInt32BE(0);
      if (buf.byteLength < 4 + length) break;
      onMessage(buf.subarray(4, 4 + length));
      buf = buf.subarray(4 + length);
    }
    pending = buf.byteLength > 0 ? buf : undefined;
  });
}

if (role === 'front') {
  let send: ((message: Buffer) => void) | undefined;
  const pending = new Map<number, ServerResponse>();
  let nextId = 1;
  const server = createHttpServer((req, res) => {
    if (send === undefined) {
      res.writeHead(503).end();
      return;
    }
    const id = nextId++;
    pending.set(id, res);
    send(frame(id, requestJson(req)));
    req.resume();
  });
  const backs = createServer((socket) => {
    socket.setNoDelay(true);
    send = corkedWriter(socket);
    readMessages(socket, (m) => {
      const id = m.readUInt32BE(0);
      const headEnd = 8 + m.readUInt32BE(4);
      const head = JSON.parse(m.toString('utf8', 8, headEnd)) as { status: number; headers: Record<string, string | string[]> };
      const res = pending.get(id);
      if (res === undefined) return;
      pending.delete(id);
      res.writeHead(head.status, head.headers);
      res.end(m.subarray(headEnd));
    });
  });
  server.listen(0, '127.0.0.1', () => {
    backs.listen(0, '127.0.0.1', () => {
      process.stdout.write(`${(server.address() as AddressInfo).port} ${(backs.address() as AddressInfo).port}\n`);
    });
  });
} else if (role === 'back') {
  const [host, port] = (upstreamArg ?? '').split(':');
  const upstream = { host: host ?? '', port: Number(port) };
  const front = connect(Number(backPortArg), '127.0.0.1');
  front.setNoDelay(true);
  const send = corkedWriter(front);
  const idle: UpstreamConnection[] = [];
  const dispatcher = backClient === 'undici' ? new Agent({ keepAliveTimeout: 4_000 }) : undefined;
  front.once('connect', () => process.stdout.write('connected\n'));
  readMessages(front, (m) => {
    const id = m.readUInt32BE(0);
    const open = JSON.parse(m.toString('utf8', 8, 8 + m.readUInt32BE(4))) as { method: Dispatcher.HttpMethod; path: string; headers: Record<string, string | string[]> };
    const answer: Answer = (status, headers, body) => send(frame(id, JSON.stringify({ status, headers }), body));
    if (dispatcher !== undefined) return viaUndici(dispatcher, `http://${upstreamArg}`, open, answer);
    let head = `${open.method} ${open.path} HTTP/1.1\r\nhost: ${upstream.host}:${upstream.port}\r\n`;
    for (const name in open.headers) {
      if (name === 'host') continue;
      const value = open.headers[name];
      for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`;
    }
    const conn = idle.pop() ?? new UpstreamConnection(upstream, idle);
    conn.request(`${head}\r\n`, answer);
  });
} else {
  process.stderr.write('usage: raw-tunnel.js front | back <upstream host:port> <back port> [undici]\n');
  process.exit(2);
}

/** One keep-alive connection to the upstream, one request at a time; back to `idle` after each answer. */
class UpstreamConnection {
  private readonly socket: Socket;
  private answer: Answer | undefined;
  private buf: Buffer | undefined;
  private status = 0;
  private headers: Record<string, string> = {};
  private bodyStart = -1;
  private bodyLength = 0;

  constructor(upstream: { host: string; port: number }, private readonly idle: UpstreamConnection[]) {
    this.socket = connect(upstream.port, upstream.host);
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', () => this.fail());
    this.socket.on('close', () => this.fail());
    // Closed after 4 s without traffic, before the service's own keep-alive timeout (Node's 5 s)
    // can close it under a request just written to it (undici's keepAliveTimeout in min-tunnel.ts).
    this.socket.setTimeout(4_000, () => this.fail());
  }

  request(head: string, answer: Answer): void {
    this.answer = answer;
    this.socket.write(head, 'latin1');
  }

  private onData(chunk: Buffer): void {
    const buf = this.buf === undefined ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.bodyStart < 0) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        this.buf = buf;
        return;
      }
      const lines = buf.toString('latin1', 0, end).split('\r\n');
      this.status = Number((lines[0] ?? '').split(' ')[1]);
      this.headers = {};
      let length: number | undefined;
      for (let i = 1; i < lines.length; i++) {
        const line = lines[i] ?? '';
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).toLowerCase();
        const value = line.slice(colon + 1).trim();
        if (name === 'content-length') length = Number(value);
        if (name !== 'connection' && name !== 'keep-alive' && name !== 'transfer-encoding') this.headers[name] = value;
      }
      if (length === undefined) return this.fail();
      this.bodyStart = end + 4;
      this.bodyLength = length;
    }
    if (buf.byteLength < this.bodyStart + this.bodyLength) {
      this.buf = buf;
      return;
    }
    const body = buf.subarray(this.bodyStart, this.bodyStart + this.bodyLength);
    const answer = this.answer;
    this.reset();
    this.idle.push(this);
    answer?.(this.status, this.headers, body);
  }

  private reset(): void {
    this.answer = undefined;
    this.buf = undefined;
    this.bodyStart = -1;
    this.bodyLength = 0;
  }

  private fail(): void {
    const answer = this.answer;
    this.reset();
    const at = this.idle.indexOf(this);
    if (at >= 0) this.idle.splice(at, 1);
    this.socket.destroy();
    answer?.(502, {});
  }
}
