import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { relayExchange, type ExchangeResult } from '../../../src/proxy/upstream-exchange.js';
import { decodeResponseFrame } from '../../../src/tunnel/protocol-stream.js';
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

describe('relayExchange', () => {
  it('keeps no raw response head on undici\'s controller while a long answer streams (an SSE stream holds its head fields once, parsed)', async () => {
    server = createServer((_req, res) => {
      open.push(res);
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
    const stream = mux.accept(1, true);
    if (stream === undefined) throw new Error('the mux refused stream 1');
    stream.on('error', () => undefined);
    const results: ExchangeResult[] = [];
    relayExchange(dispatcher, stream, { origin, path: '/events', method: 'GET', headers: {} }, (r) => results.push(r));

    await until('the response head and the first event are relayed', () => sent.some((f) => f.includes('data: first')));
    const frame = decodeResponseFrame(sent.find((f) => f.readUInt32BE(0) === 0) as Buffer, 1 << 20);
    if (typeof frame === 'string') throw new Error(frame);
    expect(frame.head).toMatchObject({ status: 200, headers: { 'content-type': 'text/event-stream', 'x-trace': 'abc' } });
    expect(texts).toEqual([]);
    // Still streaming: nothing settled, the stream open, and undici's controller without the head.
    expect(results).toEqual([]);
    expect(stream.destroyed).toBe(false);
    expect(controller?.rawHeaders).toBeNull();

    // The relay goes on: a later event arrives after the release.
    open[0]?.write('data: second\n\n');
    await until('the second event is relayed', () => sent.some((f) => f.includes('data: second')));
    open[0]?.end();
    await until('the exchange settles', () => results.length === 1);
    expect(results).toEqual([{ relayed: true }]);
  });
});
