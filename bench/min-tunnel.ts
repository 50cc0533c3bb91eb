import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import { TunnelStream } from '../src/tunnel/tunnel-stream.js';
import { directHost } from './direct-host.js';
import { corkForTurn, frame, requestJson, viaUndici } from './floor-parts.js';

/**
 * The proxy benchmark's floor for the tunnel's shape: the least two Node.js processes can do to
 * relay a small GET the way the tunnel does, with the same libraries — node:http in front, one
 * WebSocket (ws) between the processes, undici's dispatch API behind — and nothing else: no auth,
 * no routing, no service lookup, no flow control, no stream objects, no checks of what arrives.
 * Each request is one binary message each way (request: id + JSON of method, path and headers;
 * response: id + JSON head length + head + whole body), and each process writes a turn's messages
 * in one `writev` (cork, uncork in setImmediate), as the tunnel does. Run as two child processes:
 *
 *   node min-tunnel.js front [streams|duplex]                                prints its HTTP port (WebSocket too)
 *   node min-tunnel.js back <upstream origin> <front port> [streams|duplex]  dials the front, prints "connected"
 *
 * Bodies of requests are not relayed and responses are buffered whole: it is a floor for small
 * GETs, not a proxy. What it reaches bounds what the tunnel can reach with these libraries here.
 *
 * With `streams` (bench/proxy-floor.ts), each exchange also lives in the project's TunnelStream on
 * both ends, used as the tunnel uses it for a small GET (a bodiless request half built closed; the
 * front takes the whole response as the gateway's mux hands it over, `onPeerWholeResponse`; the
 * back answers through `sendWholeResponse`): the difference is what the tunnel's per-request
 * stream object costs. With `duplex`, the same object used through its Node stream sides, as the
 * tunnel used it before 2026-12-07 (the front pushes head, body and end into the readable side and
 * reads the body back; the back writes the body and ends the writable side).
 */
const [role, arg] = process.argv.slice(2);
const streamMode = process.argv.includes('streams') ? 'whole' : process.argv.includes('duplex') ? 'duplex' : undefined;
const withStreams = streamMode !== undefined;
// A plain exit on the rig's SIGTERM, so that `--cpu-prof` (CYBERUN_BENCH_MIN_NODE_ARGS) writes its profile.
process.once('SIGTERM', () => process.exit(0));

/** Sends binary messages on `ws`, corked for the rest of the turn. */
function corkedSender(ws: WebSocket): (message: Buffer) => void {
  const cork = corkForTurn((ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket);
  return (message) => {
    cork();
    ws.send(message, { binary: true });
  };
}

if (role === 'front') {
  // The agent end dials in, as the agent does; requests wait for it.
  let send: ((message: Buffer) => void) | undefined;
  const pending = new Map<number, ServerResponse>();
  const streams = new Map<number, TunnelStream>();
  const frontHost = directHost();
  let nextId = 1;
  const server = createServer((req, res) => {
    if (send === undefined) {
      res.writeHead(503).end();
      return;
    }
    const id = nextId++;
    pending.set(id, res);
    if (withStreams) {
      const stream = new TunnelStream(id, frontHost, 'local');
      stream.takesWholeResponses = streamMode === 'whole';
      stream.on('error', () => undefined);
      res.once('close', () => {
        if (!res.writableFinished) stream.destroy();
      });
      streams.set(id, stream);
    }
    send(frame(id, requestJson(req)));
    req.resume();
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    send = corkedSender(ws);
    ws.on('message', (data: Buffer) => {
      const id = data.readUInt32BE(0);
      const headEnd = 8 + data.readUInt32BE(4);
      const head = JSON.parse(data.toString('utf8', 8, headEnd)) as { status: number; headers: Record<string, string | string[]> };
      const res = pending.get(id);
      if (res === undefined) return;
      pending.delete(id);
      const stream = streams.get(id);
      if (stream === undefined) {
        res.writeHead(head.status, head.headers);
        res.end(data.subarray(headEnd));
        return;
      }
      streams.delete(id);
      const response = { type: 'stream.response', stream_id: id, status: head.status, headers: head.headers } as const;
      if (streamMode === 'whole') stream.onPeerWholeResponse(response, data.subarray(headEnd));
      else {
        stream.onPeerResponse(response);
        stream.onPeerData(data.subarray(headEnd));
        stream.onPeerEnd();
      }
      res.writeHead(head.status, head.headers);
      res.end(stream.takeWholeBody());
    });
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
} else if (role === 'back') {
  const [upstream, frontPort] = [arg ?? '', process.argv[4] ?? ''];
  const dispatcher = new Agent({ keepAliveTimeout: 4_000 });
  // A zero mask on loopback, as the agent sends (ws then skips masking).
  const ws = new WebSocket(`ws://127.0.0.1:${frontPort}/`, { generateMask: (mask: Buffer) => void mask.fill(0) });
  ws.once('open', () => {
    const send = corkedSender(ws);
    process.stdout.write('connected\n');
    ws.on('message', (data: Buffer) => {
      const id = data.readUInt32BE(0);
      const open = JSON.parse(data.toString('utf8', 8, 8 + data.readUInt32BE(4))) as { method: Dispatcher.HttpMethod; path: string; headers: Record<string, string> };
      if (!withStreams) return viaUndici(dispatcher, upstream, open, (status, headers, body) => send(frame(id, JSON.stringify({ status, headers }), body)));
      let status = 0;
      let headers: Record<string, string | string[]> = {};
      const chunks: Buffer[] = [];
      // With a TunnelStream: through its Node stream sides (duplex), or held and answered whole as the agent does.
      const stream = new TunnelStream(id, directHost((head, body) => send(frame(id, JSON.stringify(head), body))), 'remote');
      stream.on('error', () => undefined);
      const writes = streamMode === 'duplex' ? stream : undefined;
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart() {},
        onResponseStart(_controller, statusCode, responseHeaders) {
          status = statusCode;
          headers = responseHeaders as Record<string, string | string[]>;
          writes?.sendResponse(status, headers);
        },
        onResponseData(_controller, chunk) {
          if (writes === undefined) chunks.push(chunk);
          else writes.write(chunk);
        },
        onResponseEnd() {
          if (writes !== undefined) writes.end();
          else if (stream.canAnswerWhole(headers)) stream.sendWholeResponse(status, headers, Buffer.concat(chunks));
          else send(frame(id, JSON.stringify({ status, headers }), Buffer.concat(chunks)));
        },
        onResponseError() {
          send(frame(id, JSON.stringify({ status: 502, headers: {} })));
        },
      };
      dispatcher.dispatch({ origin: upstream, path: open.path, method: open.method, headers: open.headers }, handler);
    });
  });
} else {
  process.stderr.write('usage: min-tunnel.js front [streams|duplex] | back <upstream origin> <front port> [streams|duplex]\n');
  process.exit(2);
}
