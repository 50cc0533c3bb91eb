import { describe, expect, it, vi } from 'vitest';
import { STREAM_DEFAULT_WINDOW, STREAM_INITIAL_WINDOW, decodeDataFrame, decodeResponseFrame } from '../../../src/tunnel/protocol-stream.js';
import { StreamMux, type StreamFrame } from '../../../src/tunnel/stream-mux.js';
import type { ResponseWaiter } from '../../../src/tunnel/pending-response.js';
import type { TunnelStream } from '../../../src/tunnel/tunnel-stream.js';

/** Two muxes joined by an in-memory "socket" that delivers frames asynchronously, in order. */
function pair(acceptorOptions: { receiveBudgetBytes?: number } = {}): { opener: StreamMux; acceptor: StreamMux; accepted: TunnelStream[]; sentBytes: () => number; frames: Array<Record<string, unknown>> } {
  const accepted: TunnelStream[] = [];
  const frames: Array<Record<string, unknown>> = [];
  let bytes = 0;
  let a: StreamMux;
  let b: StreamMux;
  const deliver = (to: () => StreamMux, onOpen?: (id: number) => void) => ({
    sendText(text: string) {
      const frame = JSON.parse(text) as Record<string, unknown> & { type: string; stream_id: number };
      frames.push(frame);
      setImmediate(() => {
        if (frame.type === 'stream.open') onOpen?.(frame.stream_id);
        else to().handleFrame(frame as unknown as StreamFrame);
      });
    },
    sendBinary(frame: Buffer, written: () => void) {
      bytes += frame.byteLength - 4;
      // Like a socket, the transport is done with the frame's bytes once written() runs: the mux
      // reuses frame buffers, so the copy below is what the kernel's copy is for a real socket.
      const onTheWire = Buffer.from(frame);
      setImmediate(() => {
        to().handleData(onTheWire);
        written();
      });
    },
  });
  a = new StreamMux({ transport: deliver(() => b, undefined) });
  b = new StreamMux({
    transport: deliver(() => a, undefined),
    ...acceptorOptions,
  });
  // The opener's stream.open goes to the acceptor, which creates the stream.
  const openerTransport = deliver(() => b, (id) => {
    const s = b.accept(id);
    if (s) accepted.push(s);
  });
  a = new StreamMux({ transport: openerTransport });
  return { opener: a, acceptor: b, accepted, sentBytes: () => bytes, frames };
}

function openStream(p: ReturnType<typeof pair>): TunnelStream {
  const s = p.opener.open();
  p.opener.sendControl({ type: 'stream.open', stream_id: s.id });
  return s;
}

/** Two streams opened and accepted: the opener's ends, then the acceptor's. */
async function twoStreams(p: ReturnType<typeof pair>): Promise<[[TunnelStream, TunnelStream], [TunnelStream, TunnelStream]]> {
  const opened: [TunnelStream, TunnelStream] = [openStream(p), openStream(p)];
  await until('accepted', () => p.accepted.length === 2);
  return [opened, p.accepted as [TunnelStream, TunnelStream]];
}

async function withFakeTimers(toFake: Array<'performance' | 'setInterval' | 'clearInterval'>, body: () => Promise<void>): Promise<void> {
  vi.useFakeTimers({ toFake });
  try {
    await body();
  } finally {
    vi.useRealTimers();
  }
}

const tick = () => new Promise((r) => setImmediate(r));
const until = async (what: string, check: () => boolean, max = 20_000) => {
  for (let i = 0; i < max; i++) {
    if (check()) return;
    await tick();
  }
  throw new Error(`never: ${what}`);
};

describe('StreamMux / TunnelStream', () => {
  it('moves 32 MiB to a consumer that pauses and resumes at odd moments, intact and in order', async () => {
    const p = pair();
    const s = openStream(p);
    await until('accepted', () => p.accepted.length === 1);
    const peer = p.accepted[0]!;
    const total = 32 * 1024 * 1024;
    let sum = 0;
    let received = 0;
    let expectByte = 0;
    peer.on('data', (c: Buffer) => {
      for (let i = 0; i < c.length; i += 4099) {
        if (c[i] !== (expectByte + i) % 251) throw new Error(`corrupt at ${received + i}`);
      }
      expectByte = (expectByte + c.length) % 251;
      received += c.length;
      if (received % 7 === 0 || Math.random() < 0.05) {
        peer.pause();
        setTimeout(() => peer.resume(), Math.random() < 0.5 ? 0 : 2);
      }
    });
    const ended = new Promise<void>((r) => peer.on('end', () => r()));
    let sent = 0;
    while (sent < total) {
      const n = Math.min(100_000, total - sent);
      const piece = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) piece[i] = (sent + i) % 251;
      sent += n;
      if (!s.write(piece)) await new Promise((r) => s.once('drain', r));
      sum += n;
    }
    s.end();
    await ended;
    expect(received).toBe(total);
    expect(sum).toBe(total);
  }, 20_000);

  it('a receiver that never reads stops the sender after the granted credit', async () => {
    const p = pair();
    const s = openStream(p);
    await until('accepted', () => p.accepted.length === 1);
    // A producer that writes 8 MiB as fast as backpressure lets it.
    void (async () => {
      for (let i = 0; i < 128; i++) if (!s.write(Buffer.alloc(64 * 1024))) await new Promise((r) => s.once('drain', r));
    })();
    for (let i = 0; i < 2000; i++) await tick();
    // The receiver buffers at most its window (4 MiB by default), then the sender stalls; the
    // window is used once the sender delivered half the initial one fast (more than the old 1 MiB).
    const stalled = p.sentBytes();
    expect(p.acceptor.windowBytes).toBe(STREAM_DEFAULT_WINDOW);
    expect(stalled).toBeGreaterThan(1024 * 1024);
    expect(stalled).toBeLessThanOrEqual(STREAM_DEFAULT_WINDOW);
    expect(p.accepted[0]!.unreadBytes).toBe(stalled);
    for (let i = 0; i < 2000; i++) await tick();
    expect(p.sentBytes()).toBe(stalled);
    // Reading grants more, in window-sized steps.
    p.accepted[0]!.resume();
    await until('more credit used', () => p.sentBytes() > stalled + STREAM_INITIAL_WINDOW);
  });

  it("streams whose readers stall hold no more than their initial windows plus the connection's receive budget, and a finished stream's share goes to the next", async () => {
    const MiB = 1024 * 1024;
    const extra = STREAM_DEFAULT_WINDOW - STREAM_INITIAL_WINDOW;
    // Room for two streams at the full window and half a MiB more.
    const p = pair({ receiveBudgetBytes: 2 * extra + MiB / 2 });
    // 8 MiB and the end, as fast as backpressure lets it; a reset from the reader ends it early.
    const writeFast = (s: TunnelStream) => {
      s.on('error', () => undefined);
      void (async () => {
        for (let i = 0; i < 128 && !s.destroyed; i++) if (!s.write(Buffer.alloc(64 * 1024))) await new Promise((r) => s.once('drain', r));
        s.end();
      })();
    };
    const settle = async () => {
      for (let i = 0; i < 3000; i++) await tick();
    };
    const opened = [0, 1, 2, 3].map(() => openStream(p));
    await until('accepted', () => p.accepted.length === 4);
    opened.forEach(writeFast);
    await settle();
    // Nobody reads: each stream stalls at what its receiver granted.
    const held = p.accepted.map((s) => s.unreadBytes);
    expect([...held].sort((x, y) => x - y)).toEqual([STREAM_INITIAL_WINDOW, STREAM_INITIAL_WINDOW + MiB / 2, STREAM_DEFAULT_WINDOW, STREAM_DEFAULT_WINDOW]);
    expect(p.sentBytes()).toBe(held.reduce((x, y) => x + y, 0));

    // The budget is spent: a fifth stream keeps the initial window.
    const fifth = openStream(p);
    await until('accepted', () => p.accepted.length === 5);
    writeFast(fifth);
    await settle();
    expect(p.accepted[4]!.unreadBytes).toBe(STREAM_INITIAL_WINDOW);

    // One full-window stream is reset, another is read to its end: both shares go back, and the
    // next streams get the full window again.
    const big = held.map((h, i) => (h === STREAM_DEFAULT_WINDOW ? i : -1)).filter((i) => i >= 0);
    p.accepted[big[0]!]!.destroy();
    const drained = p.accepted[big[1]!]!;
    drained.resume();
    await until('drained', () => drained.readableEnded);
    const later = [openStream(p), openStream(p)];
    await until('accepted', () => p.accepted.length === 7);
    later.forEach(writeFast);
    await settle();
    expect(p.accepted.slice(5).map((s) => s.unreadBytes)).toEqual([STREAM_DEFAULT_WINDOW, STREAM_DEFAULT_WINDOW]);
    for (const s of p.accepted) s.on('error', () => undefined);
    for (const s of [...opened, fifth, ...later]) s.destroy();
    await settle();
  }, 30_000);

  it('a stream grows past the initial window only when its peer sends fast: a slow feed leaves the budget alone', async () => {
    await withFakeTimers(['performance'], async () => {
      const [[slow, fast], [slowIn, fastIn]] = await twoStreams(pair());
      // 1 MiB each, nobody reading: the slow one 16 KiB every 20 ms (0.8 MB/s), the fast one at once.
      for (let i = 0; i < 64; i++) {
        slow.write(Buffer.alloc(16 * 1024));
        for (let t = 0; t < 20; t++) await tick();
        vi.advanceTimersByTime(20);
      }
      fast.write(Buffer.alloc(1024 * 1024));
      await until('the fast one arrived whole', () => fastIn.unreadBytes === 1024 * 1024);
      for (let t = 0; t < 200; t++) await tick();
      expect(slowIn.unreadBytes).toBe(STREAM_INITIAL_WINDOW);
    });
  });

  it('tiny frames for a stalled reader are coalesced into buffers of their own, not kept as one Buffer each', async () => {
    const [[sender], [receiver]] = await twoStreams(pair());
    const frames = 20_000;
    for (let i = 0; i < frames; i++) sender.write(Buffer.from([i % 251]));
    sender.end();
    await until('all arrived', () => receiver.unreadBytes === frames, 200_000);
    const read: Buffer[] = [];
    receiver.on('data', (c: Buffer) => read.push(c));
    await until('read', () => receiver.readableEnded);
    // Node's buffer held the first byte; the rest came in buffers of their own, 1, 2, 4, 8, then 16 KiB.
    expect(read.slice(1).map((c) => c.buffer.byteLength)).toEqual([1, 2, 4, 8, 16].map((k) => k * 1024));
    expect(Buffer.concat(read).equals(Buffer.from(Array.from({ length: frames }, (_, i) => i % 251)))).toBe(true);
  }, 30_000);

  it('a few small chunks parked for a paused reader cost about their size, not a 16 KiB buffer', async () => {
    const [[sender], [receiver]] = await twoStreams(pair());
    for (let i = 0; i < 3; i++) sender.write(Buffer.alloc(100, i));
    sender.end();
    await until('all arrived', () => receiver.unreadBytes === 300);
    const read: Buffer[] = [];
    receiver.on('data', (c: Buffer) => read.push(c));
    await until('read', () => receiver.readableEnded);
    expect(read.map((c) => [c.byteLength, c.buffer.byteLength])).toEqual([
      [100, read[0]!.buffer.byteLength],
      [200, 1024],
    ]);
  });

  it("a stalled reader's unread bytes are compacted into buffers of their own after a sweep; a flowing reader's are never copied", async () => {
    await withFakeTimers(['setInterval', 'clearInterval'], async () => {
      const [[stalled, flowing], [stalledIn, flowingIn]] = await twoStreams(pair());
      const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => i % 251));
      // The flowing reader takes what comes: the frames' payloads as they arrived, slices of them.
      const flowed: Buffer[] = [];
      flowingIn.on('data', (c: Buffer) => flowed.push(c));
      flowing.end(pattern(512 * 1024));
      stalled.write(pattern(512 * 1024));
      await until('flowed', () => flowingIn.readableEnded);
      await until('all of it arrived, unread', () => stalledIn.unreadBytes === 512 * 1024);
      expect(flowed.every((c) => c.buffer.byteLength > c.byteLength)).toBe(true);

      vi.advanceTimersByTime(2_000); // two sweeps: the bytes stayed parked since before the first
      const read: Buffer[] = [];
      stalledIn.on('data', (c: Buffer) => read.push(c));
      await until('read', () => read.reduce((n, c) => n + c.byteLength, 0) === 512 * 1024);
      // Node's buffer keeps its one chunk; everything parked behind it is now one buffer of its own.
      expect(read.length).toBeGreaterThanOrEqual(2);
      const compacted = read[1]!;
      expect(read.length).toBe(2);
      expect(compacted.byteLength).toBe(512 * 1024 - read[0]!.byteLength);
      expect(compacted.buffer.byteLength).toBe(compacted.byteLength);
      stalled.end();
      await until('ended', () => stalledIn.readableEnded);
      expect(Buffer.concat(read).equals(pattern(512 * 1024))).toBe(true);
    });
  });

  it('interleaves streams: a small message is not queued behind a large body', async () => {
    const p = pair();
    const big = openStream(p);
    const small = openStream(p);
    await until('accepted', () => p.accepted.length === 2);
    const [bigPeer, smallPeer] = p.accepted as [TunnelStream, TunnelStream];
    let bigBytes = 0;
    bigPeer.on('data', (c: Buffer) => (bigBytes += c.length));
    let bigAtSmallEnd = -1;
    smallPeer.on('data', () => undefined);
    smallPeer.on('end', () => (bigAtSmallEnd = bigBytes));
    const bigDone = new Promise((r) => bigPeer.on('end', r));
    big.end(Buffer.alloc(16 * 1024 * 1024));
    small.end(Buffer.from('hello'));
    await bigDone;
    expect(bigAtSmallEnd).toBeGreaterThanOrEqual(0);
    expect(bigAtSmallEnd).toBeLessThan(4 * 1024 * 1024);
  }, 30_000);

  it('a reset on one side errors the other side and frees both ids', async () => {
    const p = pair();
    const s = openStream(p);
    await until('accepted', () => p.accepted.length === 1);
    const peer = p.accepted[0]!;
    const failed = new Promise<Error>((r) => peer.once('error', r));
    s.on('error', () => undefined);
    s.destroy(new Error('client went away'));
    const err = await failed;
    expect(err.message).toMatch(/reset by the peer \(cancelled: client went away\)/);
    await until('both retired', () => p.opener.size === 0 && p.acceptor.size === 0);
  });

  it('refuses data beyond the granted credit with a protocol reset', async () => {
    const p = pair();
    const s = openStream(p);
    await until('accepted', () => p.accepted.length === 1);
    const peer = p.accepted[0]!;
    peer.on('error', () => undefined);
    s.on('error', () => undefined);
    const frame = Buffer.alloc(4 + STREAM_INITIAL_WINDOW + 1);
    frame.writeUInt32BE(s.id, 0);
    p.acceptor.handleData(frame);
    await until('reset sent', () => p.frames.some((f) => f['type'] === 'stream.reset' && f['code'] === 'protocol_error'));
    expect(peer.destroyed).toBe(true);
  });

  it('a request without a body (has_body: false) has that half closed from the start on both sides, and both retire on the response end', async () => {
    const p = pair();
    let peer: TunnelStream | undefined;
    // The acceptor's side as AgentStreams builds it for has_body: false.
    const acceptor = p.acceptor;
    const s = p.opener.open(true);
    expect(s.writableFinished).toBe(true);
    setImmediate(() => {
      peer = acceptor.accept(s.id, true);
    });
    await until('accepted', () => peer !== undefined);
    expect(peer!.readableEnded).toBe(true);
    const closed: string[] = [];
    s.once('close', () => closed.push('opener'));
    peer!.once('close', () => closed.push('acceptor'));
    const body: Buffer[] = [];
    s.on('data', (c: Buffer) => body.push(c));
    peer!.end(Buffer.from('answer'));
    await until('both closed', () => closed.length === 2);
    expect(Buffer.concat(body).toString()).toBe('answer');
    // Nothing but the data and the end crossed: no stream.end for the empty request half, no reset.
    expect(p.frames.map((f) => f.type)).toEqual(['stream.end']);
    expect([p.opener.size, acceptor.size]).toEqual([0, 0]);
  });

  it('a whole response leaves at once when the mux is free, and waits its turn behind a full socket', () => {
    const binary: Buffer[] = [];
    const written: Array<() => void> = [];
    const mux = new StreamMux({
      transport: { sendText: () => undefined, sendBinary: (frame, done) => (binary.push(Buffer.from(frame)), written.push(done)) },
      socketHighWaterBytes: 16 * 1024,
    });
    mux.combinedResponses = true;
    const whole = (id: number) => {
      const stream = mux.accept(id, true) as TunnelStream;
      stream.sendWholeResponse(200, { 'content-length': '2' }, Buffer.from('ok'));
      return stream;
    };
    // Free: one response frame at once, the stream done (retired) and closing.
    const first = whole(1);
    expect(binary).toHaveLength(1);
    expect(first.destroyed).toBe(true);
    expect(mux.size).toBe(0);
    // A body of another stream fills the socket (its writes are not acknowledged yet).
    const bulk = mux.accept(2, true) as TunnelStream;
    bulk.sendResponse(200, {});
    bulk.write(Buffer.alloc(64 * 1024));
    const sentBefore = binary.length;
    const second = whole(3);
    expect(binary).toHaveLength(sentBefore);
    expect(second.destroyed).toBe(false);
    // The socket drains: the queued response leaves, still whole and ended.
    for (let i = 0; i < 20 && !second.destroyed; i++) written.splice(0).forEach((done) => done());
    const frame = binary.map((b) => decodeResponseFrame(b, 64 * 1024)).find((f) => typeof f !== 'string' && f.streamId === 3);
    expect(frame).toMatchObject({ streamId: 3, end: true });
    expect(typeof frame !== 'string' && frame?.body.toString()).toBe('ok');
    expect(second.destroyed).toBe(true);
  });

  it('accepts only increasing stream ids', () => {
    const p = pair();
    expect(p.acceptor.accept(5)).toBeDefined();
    expect(p.acceptor.accept(5)).toBeUndefined();
    expect(p.acceptor.accept(3)).toBeUndefined();
    expect(p.frames.filter((f) => f['type'] === 'stream.reset' && f['code'] === 'refused')).toHaveLength(2);
  });
});

describe('StreamMux.request: a bodiless request without a stream until its answer needs one', () => {
  /** A waiter that records what it was told, and the accepted peer of the request. */
  function bodiless(p: ReturnType<typeof pair>, combined: boolean) {
    p.acceptor.combinedResponses = combined;
    const told: Array<{ kind: string; status?: number; body?: string; stream?: TunnelStream; error?: string }> = [];
    const waiter: ResponseWaiter = {
      whole: (head, body) => told.push({ kind: 'whole', status: head.status, body: body.toString() }),
      streamed: (stream) => {
        stream.on('error', () => undefined);
        told.push({ kind: 'streamed', ...(stream.response === undefined ? {} : { status: stream.response.status }), stream });
      },
      failed: (err) => told.push({ kind: 'failed', error: err.message }),
    };
    const pending = p.opener.request(waiter);
    let peer: TunnelStream | undefined;
    setImmediate(() => {
      peer = p.acceptor.accept(pending.id, true);
      peer?.on('error', () => undefined);
    });
    return { pending, told, peer: async () => (await until('accepted', () => peer !== undefined), peer as TunnelStream) };
  }

  it('a whole answer (one response frame) goes to whole(), with nothing else crossing and no stream left', async () => {
    const p = pair();
    const { told, peer } = bodiless(p, true);
    (await peer()).sendWholeResponse(200, { 'content-length': '2' }, Buffer.from('ok'));
    await until('answered', () => told.length === 1);
    expect(told).toEqual([{ kind: 'whole', status: 200, body: 'ok' }]);
    expect(p.frames).toEqual([]);
    expect([p.opener.size, p.acceptor.size]).toEqual([0, 0]);
  });

  it('an answer that streams becomes a stream with its head set, and the body arrives through it', async () => {
    const p = pair();
    const { told, peer } = bodiless(p, true);
    const agent = await peer();
    agent.sendResponse(200, { 'content-type': 'text/event-stream' });
    agent.write('event 1\n');
    await until('streamed', () => told.length === 1);
    const stream = told[0]?.stream as TunnelStream;
    expect(told[0]).toMatchObject({ kind: 'streamed', status: 200 });
    const body: Buffer[] = [];
    stream.on('data', (c: Buffer) => body.push(c));
    agent.end('event 2\n');
    await until('ended', () => stream.readableEnded);
    expect(Buffer.concat(body).toString()).toBe('event 1\nevent 2\n');
    await until('retired', () => p.opener.size === 0);
  });

  it("a version-2 agent's separate stream.response, data and end also arrive through a stream", async () => {
    const p = pair();
    const { told, peer } = bodiless(p, false);
    const agent = await peer();
    agent.sendResponse(201, {});
    agent.end('v2 body');
    await until('streamed', () => told.length === 1);
    const stream = told[0]?.stream as TunnelStream;
    expect(told[0]).toMatchObject({ kind: 'streamed', status: 201 });
    const body: Buffer[] = [];
    stream.on('data', (c: Buffer) => body.push(c));
    await until('ended', () => stream.readableEnded);
    expect(Buffer.concat(body).toString()).toBe('v2 body');
  });

  it('a reset before any answer goes to failed(), naming the reset', async () => {
    const p = pair();
    const { told, peer } = bodiless(p, true);
    (await peer()).destroy(new Error('replica gone'));
    await until('failed', () => told.length === 1);
    expect(told[0]?.kind).toBe('failed');
    expect(told[0]?.error).toMatch(/reset by the peer \(cancelled: replica gone\)/);
    expect(p.opener.size).toBe(0);
  });

  it('cancel() before the answer resets the stream at the peer, and a late answer is dropped', async () => {
    const p = pair();
    const { pending, told, peer } = bodiless(p, true);
    const agent = await peer();
    pending.cancel();
    expect(p.opener.size).toBe(0);
    await until('reset at the peer', () => agent.destroyed);
    expect(p.frames.filter((f) => f['type'] === 'stream.reset')).toEqual([{ type: 'stream.reset', stream_id: pending.id, code: 'cancelled' }]);
    expect(told).toEqual([]);
  });

  it('cancel() after the answer became a stream destroys that stream (the peer is reset)', async () => {
    const p = pair();
    const { pending, told, peer } = bodiless(p, true);
    const agent = await peer();
    agent.sendResponse(200, {});
    agent.write('first');
    await until('streamed', () => told.length === 1);
    pending.cancel();
    expect(told[0]?.stream?.destroyed).toBe(true);
    await until('reset at the peer', () => agent.destroyed);
  });

  it('a lost connection fails every pending request', () => {
    const p = pair();
    const { told } = bodiless(p, true);
    p.opener.closeAll('socket closed');
    expect(told).toEqual([{ kind: 'failed', error: 'tunnel connection lost: socket closed' }]);
    expect(p.opener.size).toBe(0);
  });
});

describe('StreamMux.acceptBodiless: a bodiless request answered without a stream unless the answer streams', () => {
  /** An acceptor mux whose frames are captured; written() callbacks held back while `full`. */
  function acceptor(full = false) {
    const text: Array<Record<string, unknown>> = [];
    const binary: Buffer[] = [];
    const held: Array<() => void> = [];
    const mux = new StreamMux({
      transport: {
        sendText: (t) => text.push(JSON.parse(t) as Record<string, unknown>),
        sendBinary: (frame, written) => {
          binary.push(Buffer.from(frame));
          if (full) held.push(written);
          else written();
        },
      },
      socketHighWaterBytes: 16 * 1024,
    });
    mux.combinedResponses = true;
    const responses = () => binary.map((b) => decodeResponseFrame(b, 64 * 1024)).filter((f) => typeof f !== 'string');
    return { mux, text, binary, held, responses };
  }
  const closed = (e: { once(event: 'close', fn: () => void): unknown }) => {
    const seen = { closed: false };
    e.once('close', () => (seen.closed = true));
    return seen;
  };

  it('a whole answer leaves at once as one response frame; the exchange closes and is forgotten', async () => {
    const { mux, responses } = acceptor();
    const x = mux.acceptBodiless(1)!;
    const c = closed(x);
    expect(x.canAnswerWhole({ 'content-length': '2' })).toBe(true);
    x.sendWholeResponse(200, { 'content-length': '2' }, Buffer.from('ok'));
    expect(responses()).toMatchObject([{ streamId: 1, end: true, head: { status: 200 } }]);
    expect([x.destroyed, x.sentStatus, mux.size]).toEqual([true, 200, 0]);
    await until('closed', () => c.closed);
  });

  it('an answer that streams goes through the stream it becomes; its close is the exchange\'s', async () => {
    const { mux, text, binary } = acceptor();
    const x = mux.acceptBodiless(1)!;
    const c = closed(x);
    expect(x.canAnswerWhole({ 'content-type': 'text/event-stream' })).toBe(false);
    const stream = x.toStream();
    expect(x.toStream()).toBe(stream);
    stream.sendResponse(200, { 'content-type': 'text/event-stream' });
    stream.end('event\n');
    await until('closed', () => c.closed);
    expect(x.sentStatus).toBe(200);
    expect(binary.length).toBeGreaterThan(0);
    expect(text.filter((f) => f['type'] === 'stream.reset')).toEqual([]);
    expect(mux.size).toBe(0);
  });

  it('a reset from the peer closes it with nothing sent back; destroy() resets the peer, saying why', async () => {
    const { mux, text, binary } = acceptor();
    const gone = mux.acceptBodiless(1)!;
    const c1 = closed(gone);
    mux.handleFrame({ type: 'stream.reset', stream_id: 1, code: 'cancelled' });
    expect(gone.destroyed).toBe(true);
    await until('closed', () => c1.closed);
    const cut = mux.acceptBodiless(2)!;
    const c2 = closed(cut);
    cut.destroy(new Error('replica gone'));
    await until('closed', () => c2.closed);
    expect(text).toEqual([{ type: 'stream.reset', stream_id: 2, code: 'cancelled', message: 'replica gone' }]);
    expect(binary).toEqual([]);
    // Nothing more goes out for either once it is over.
    gone.sendWholeResponse(200, { 'content-length': '0' }, undefined);
    cut.sendWholeResponse(200, { 'content-length': '0' }, undefined);
    expect([binary.length, mux.size]).toEqual([0, 0]);
  });

  it('behind a full socket a whole answer waits its turn in a stream and still leaves whole', async () => {
    const { mux, held, responses } = acceptor(true);
    const bulk = mux.accept(1, true)!;
    bulk.sendResponse(200, {});
    bulk.write(Buffer.alloc(64 * 1024));
    const x = mux.acceptBodiless(2)!;
    const c = closed(x);
    x.sendWholeResponse(200, { 'content-length': '2' }, Buffer.from('ok'));
    expect(responses().some((f) => f.streamId === 2)).toBe(false);
    for (let i = 0; i < 20 && !x.destroyed; i++) held.splice(0).forEach((done) => done());
    expect(responses().find((f) => f.streamId === 2)).toMatchObject({ end: true, body: Buffer.from('ok') });
    await until('closed', () => c.closed);
  });

  it("its listeners: every close listener runs once; a drain listener at the next drain only; a stream's errors reach it once it became one", async () => {
    const { mux } = acceptor();
    const calls: string[] = [];
    const x = mux.acceptBodiless(1)!;
    x.on('close', () => calls.push('close 1'));
    x.once('close', () => calls.push('close 2'));
    x.on('error', (err) => calls.push(`error ${err.message}`));
    const stream = x.toStream();
    stream.destroy(new Error('boom'));
    await until('closed', () => calls.includes('close 2'));
    await tick();
    expect(calls).toEqual(['error boom', 'close 1', 'close 2']);

    const y = mux.acceptBodiless(2)!;
    let drains = 0;
    y.once('drain', () => drains++);
    y.sendResponse(200, {});
    for (let i = 0; i < 20; i++) y.write(Buffer.alloc(16 * 1024));
    mux.handleFrame({ type: 'stream.window', stream_id: 2, credit: 64 * 1024 });
    y.write(Buffer.alloc(32 * 1024));
    mux.handleFrame({ type: 'stream.window', stream_id: 2, credit: 64 * 1024 });
    expect(drains).toBe(1);
    y.destroy();
  });

  it('a stream.window that comes before the answer leaves a small answer whole, at once', async () => {
    const { mux, responses, text } = acceptor();
    const x = mux.acceptBodiless(1)!;
    mux.handleFrame({ type: 'stream.window', stream_id: 1, credit: 64 * 1024 });
    expect(x.canAnswerWhole({ 'content-length': '2' })).toBe(true);
    x.sendWholeResponse(200, { 'content-length': '2' }, Buffer.from('ok'));
    expect(responses()).toMatchObject([{ streamId: 1, end: true, body: Buffer.from('ok') }]);
    expect([x.destroyed, mux.size, text]).toEqual([true, 0, []]);
  });

  it('a stream.window that comes before anything was answered leaves the exchange free to become a stream', () => {
    const { mux } = acceptor();
    const x = mux.acceptBodiless(1)!;
    mux.handleFrame({ type: 'stream.window', stream_id: 1, credit: 64 * 1024 });
    const stream = x.toStream();
    expect(x.toStream()).toBe(stream);
    stream.destroy();
  });

  it('a lost connection closes every bodiless exchange', async () => {
    const { mux } = acceptor();
    const x = mux.acceptBodiless(1)!;
    const c = closed(x);
    mux.closeAll('socket closed');
    expect(x.destroyed).toBe(true);
    await until('closed', () => c.closed);
  });

  /** Body bytes of the data frames captured, in order (response frames are not data frames). */
  const dataOf = (binary: Buffer[]) => binary.filter((b) => b.readUInt32BE(0) !== 0).map((b) => decodeDataFrame(b)!.payload);

  it('an answer that streams leaves from the exchange itself: head with the first event, events, end; no stream is made', async () => {
    const { mux, text, binary, responses } = acceptor();
    const x = mux.acceptBodiless(1)!;
    const c = closed(x);
    x.sendResponse(200, { 'content-type': 'text/event-stream' });
    expect(x.write(Buffer.from('data: 1\n\n'))).toBe(true);
    // The head is held for this event-loop turn, then leaves with the event behind it, in one response frame.
    expect(responses()).toEqual([]);
    await tick();
    expect(responses()).toMatchObject([{ streamId: 1, end: false, head: { status: 200 }, body: Buffer.from('data: 1\n\n') }]);
    expect(x.write(Buffer.from('data: 2\n\n'))).toBe(true);
    x.end();
    await until('closed', () => c.closed);
    expect(dataOf(binary)).toEqual([Buffer.from('data: 2\n\n')]);
    expect(text).toEqual([{ type: 'stream.end', stream_id: 1 }]);
    expect([x.destroyed, x.sentStatus, mux.size]).toEqual([true, 200, 0]);
    expect(() => x.toStream()).toThrow(/cannot become a stream/);
  });

  it("a streamed head leaves alone after one event-loop turn when no body comes", async () => {
    const { mux, responses } = acceptor();
    const x = mux.acceptBodiless(1)!;
    x.sendResponse(200, { 'content-type': 'text/event-stream' });
    expect(responses()).toEqual([]);
    await tick();
    expect(responses()).toMatchObject([{ streamId: 1, end: false, head: { status: 200 } }]);
    x.destroy();
  });

  it('the answer follows the credit: it stops at the initial window, drains once stream.window came, and says drain', async () => {
    const { mux, binary, responses } = acceptor();
    const x = mux.acceptBodiless(1)!;
    const sent = () => dataOf(binary).reduce((n, b) => n + b.byteLength, 0) + responses().reduce((n, f) => n + f.body.byteLength, 0);
    let drained = 0;
    x.sendResponse(200, {});
    let ok = true;
    for (let i = 0; i < 20; i++) ok = x.write(Buffer.alloc(16 * 1024, i));
    expect(ok).toBe(false);
    await tick();
    expect(sent()).toBe(STREAM_INITIAL_WINDOW);
    x.once('drain', () => drained++);
    mux.handleFrame({ type: 'stream.window', stream_id: 1, credit: 64 * 1024 });
    expect(sent()).toBe(20 * 16 * 1024);
    expect(drained).toBe(1);
    x.end();
  });

  it('data from the peer, whose half carries nothing, resets the exchange as a protocol error; reset() says its code', async () => {
    const { mux, text } = acceptor();
    const x = mux.acceptBodiless(1)!;
    x.sendResponse(200, { 'content-type': 'text/event-stream' });
    x.write(Buffer.from('data: 1\n\n'));
    const frame = Buffer.alloc(6);
    frame.writeUInt32BE(1, 0);
    expect(mux.handleData(frame)).toBeUndefined();
    expect(x.destroyed).toBe(true);
    expect(text).toEqual([expect.objectContaining({ type: 'stream.reset', stream_id: 1, code: 'protocol_error' })]);
    const y = mux.acceptBodiless(2)!;
    y.sendResponse(200, { 'content-type': 'text/event-stream' });
    y.reset('upstream_failed', new Error('replica died'));
    expect(text.at(-1)).toEqual({ type: 'stream.reset', stream_id: 2, code: 'upstream_failed', message: 'replica died' });
    // Nothing more leaves for either.
    const before = text.length;
    x.end();
    y.write(Buffer.from('late'));
    y.end();
    await tick();
    expect([text.length, mux.size]).toEqual([before, 0]);
  });
});

