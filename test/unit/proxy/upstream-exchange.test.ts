import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { relayExchange, type ExchangeResult } from '../../../src/proxy/upstream-exchange.js';
import { decodeResponseFrame } from '../../../src/tunnel/protocol-stream.js';
import { v8Gc } from '../../../src/tunnel/scavenge-pacer.js';
import { StreamMux } from '../../../src/tunnel/stream-mux.js';

/** A mux with no peer: what it would send is recorded, every write completes at once. */
function recordingMux(): { mux: StreamMux; sent: Buffer[]; texts: string[] } {
  const sent: Buffer[] = [];
  const texts: string[] = [];
  const mux = new StreamMux({
    transport: {
      sendText: (text) => texts.push(text),
      sendBinary: (frame, written) => {
        sent.push(Buffer.from(frame));
        written();
      },
    },
  });
  mux.combinedResponses = true; // protocol 3: the head leaves as a response frame
  return { mux, sent, texts };
}

const gc = v8Gc();
if (gc === null) throw new Error('this runtime offers no gc function (scavenge-pacer.ts)');

const until = async (what: string, check: () => boolean) => {
  for (let i = 0; i < 2_000; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never: ${what}`);
};

let server: Server | undefined;
let pool: Pool | undefined;
const open: ServerResponse[] = [];
afterEach(async () => {
  for (const res of open.splice(0)) res.destroy();
  await pool?.destroy();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
  pool = undefined;
});

/** The agent's two kinds of accepted exchange for a bodiless request: a TunnelStream, and the BodilessExchange it uses. */
const acceptors = [
  ['a TunnelStream', (mux: StreamMux) => mux.accept(1, true)],
  ['a BodilessExchange', (mux: StreamMux) => mux.acceptBodiless(1)],
] as const;

describe('relayExchange', () => {
  it.each(acceptors)('a long answer into %s: settles once its head is relayed and keeps neither undici\'s raw head nor the caller\'s callback, yet the client leaving still aborts the upstream request', async (_kind, accept) => {
    let upstreamClosed = false;
    server = createServer((_req, res) => {
      open.push(res);
      res.on('close', () => (upstreamClosed = true));
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-trace': 'abc', 'cache-control': 'no-cache' });
      res.write('data: first\n\n');
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // The controller undici hands the handler, seen from an interceptor in front of it.
    let controller: Dispatcher.DispatchController | undefined;
    pool = new Pool(origin);
    const dispatcher = pool.compose((dispatch) => (opts, handler) =>
      dispatch(opts, {
        onRequestStart: (c, ctx) => {
          controller = c;
          handler.onRequestStart?.(c, ctx);
        },
        onResponseStart: (c, status, headers, message) => {
          // undici set the raw fields for this call: the handler lets go of them in it.
          expect(c.rawHeaders?.length).toBeGreaterThan(0);
          handler.onResponseStart?.(c, status, headers, message);
        },
        onResponseData: (c, chunk) => handler.onResponseData?.(c, chunk),
        onResponseEnd: (c, trailers) => handler.onResponseEnd?.(c, trailers),
        onResponseError: (c, err) => handler.onResponseError?.(c, err),
      }),
    );
    const { mux, sent, texts } = recordingMux();
    const stream = accept(mux);
    if (stream === undefined) throw new Error('the mux refused stream 1');
    stream.on('error', () => undefined);
    const results: ExchangeResult[] = [];
    // What a caller keeps in its callback for a retry (agent-proxy.ts: the request, the replica),
    // reachable only through the callback: a WeakRef to it tells whether the handler let go.
    const callerState = ((): WeakRef<object> => {
      const retry = { path: '/events', headers: { accept: 'text/event-stream' } };
      relayExchange(dispatcher, stream, { origin, path: '/events', method: 'GET', headers: {} }, (r) => {
        void retry;
        results.push(r);
      });
      return new WeakRef(retry);
    })();

    await until('the response head and the first event are relayed', () => sent.some((f) => f.includes('data: first')));
    const frame = decodeResponseFrame(sent.find((f) => f.readUInt32BE(0) === 0) as Buffer, 1 << 20);
    if (typeof frame === 'string') throw new Error(frame);
    expect(frame.head).toMatchObject({ status: 200, headers: { 'content-type': 'text/event-stream', 'x-trace': 'abc' } });
    expect(texts).toEqual([]);
    // Still streaming, yet settled: the caller's part is done once the head is in the stream.
    expect(results).toEqual([{ relayed: true }]);
    expect(stream.destroyed).toBe(false);
    expect(controller?.rawHeaders).toBeNull();

    // The relay goes on: a later event arrives after the release.
    open[0]?.write('data: second\n\n');
    await until('the second event is relayed', () => sent.some((f) => f.includes('data: second')));
    // Nothing holds the callback's state any more (a full GC collects it) while the stream is open.
    await until('the caller\'s state is collected', () => {
      gc(); // a full GC
      return callerState.deref() === undefined;
    });

    // The client goes away mid-stream: the upstream request is aborted, and nothing settles twice.
    stream.destroy();
    await until('the upstream request is closed', () => upstreamClosed);
    expect(results).toEqual([{ relayed: true }]);
  });
  it.each(acceptors)('an upstream that fails in the middle of its answer into %s resets it as upstream_failed, once, and stops', async (_kind, accept) => {
    server = createServer((_req, res) => {
      open.push(res);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    pool = new Pool(origin);
    const { mux, sent, texts } = recordingMux();
    const stream = accept(mux);
    if (stream === undefined) throw new Error('the mux refused stream 1');
    stream.on('error', () => undefined);
    let closed = false;
    stream.on('close', () => (closed = true));
    const results: ExchangeResult[] = [];
    relayExchange(pool, stream, { origin, path: '/events', method: 'GET', headers: {} }, (r) => results.push(r));
    await until('the first event is relayed', () => sent.some((f) => f.includes('data: first')));
    open[0]?.socket?.destroy();
    await until('the exchange is reset', () => texts.length > 0 && closed);
    expect(texts.map((t) => JSON.parse(t) as Record<string, unknown>)).toEqual([expect.objectContaining({ type: 'stream.reset', stream_id: 1, code: 'upstream_failed' })]);
    expect(results).toEqual([{ relayed: true }]);
    expect([stream.destroyed, mux.size]).toEqual([true, 0]);
  });
});
