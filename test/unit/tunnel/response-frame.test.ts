import { describe, expect, it } from 'vitest';
import { RESPONSE_FRAME_PREFIX, STREAM_INITIAL_WINDOW, STREAM_MAX_CHUNK, decodeResponseFrame, encodeResponseFrame } from '../../../src/tunnel/protocol-stream.js';
import { StreamMux, type StreamFrame } from '../../../src/tunnel/stream-mux.js';
import type { TunnelStream } from '../../../src/tunnel/tunnel-stream.js';
import type { BodilessExchange } from '../../../src/tunnel/bodiless-exchange.js';

interface Wire {
  gateway: StreamMux;
  agent: StreamMux;
  /** What the agent sent: 'text:<type>' or 'binary:response' / 'binary:data'. */
  agentSent: string[];
  problems: string[];
  open(): Promise<{ gw: TunnelStream; ag: TunnelStream }>;
  /** As open(), the agent taking the request as a bodiless exchange (StreamMux.acceptBodiless). */
  openBodiless(): Promise<{ gw: TunnelStream; ex: BodilessExchange }>;
}

/** A gateway mux and an agent mux joined in memory, frames delivered asynchronously and in order. */
function wire(combined: boolean): Wire {
  const agentSent: string[] = [];
  const problems: string[] = [];
  let accepted: TunnelStream | undefined;
  let acceptedExchange: BodilessExchange | undefined;
  let bodiless = false;
  let gateway: StreamMux | undefined;
  const agent: StreamMux = new StreamMux({
    transport: {
      sendText(text) {
        const frame = JSON.parse(text) as StreamFrame;
        agentSent.push(`text:${frame.type}`);
        setImmediate(() => gateway?.handleFrame(frame));
      },
      sendBinary(frame, written) {
        const copy = Buffer.from(frame);
        agentSent.push(copy.readUInt32BE(0) === 0 ? 'binary:response' : 'binary:data');
        setImmediate(() => {
          const problem = gateway?.handleData(copy);
          if (problem !== undefined) problems.push(problem);
          written();
        });
      },
    },
  });
  agent.combinedResponses = combined;
  gateway = new StreamMux({
    transport: {
      sendText(text) {
        const frame = JSON.parse(text) as { type: string; stream_id: number; has_body?: boolean };
        setImmediate(() => {
          if (frame.type === 'stream.open' && bodiless) acceptedExchange = agent.acceptBodiless(frame.stream_id);
          else if (frame.type === 'stream.open') accepted = agent.accept(frame.stream_id, frame.has_body === false);
          else agent.handleFrame(frame as StreamFrame);
        });
      },
      sendBinary(frame, written) {
        const copy = Buffer.from(frame);
        setImmediate(() => {
          agent.handleData(copy);
          written();
        });
      },
    },
  });
  const gw = gateway;
  return {
    gateway: gw,
    agent,
    agentSent,
    problems,
    async openBodiless() {
      bodiless = true;
      const s = gw.open(true);
      gw.sendControl({ type: 'stream.open', stream_id: s.id, has_body: false });
      while (acceptedExchange === undefined) await tick();
      const ex = acceptedExchange;
      acceptedExchange = undefined;
      bodiless = false;
      return { gw: s, ex };
    },
    async open() {
      const s = gw.open(true);
      gw.sendControl({ type: 'stream.open', stream_id: s.id, has_body: false });
      while (accepted === undefined) await tick();
      const ag = accepted;
      accepted = undefined;
      return { gw: s, ag };
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

/** Everything the gateway side of a stream receives: the head, the body and whether it ended. */
function collect(s: TunnelStream): Promise<{ status: number | undefined; body: Buffer; events: string[] }> {
  const chunks: Buffer[] = [];
  const events: string[] = [];
  s.on('response', () => events.push('response'));
  s.on('data', (c: Buffer) => {
    events.push('data');
    chunks.push(c);
  });
  return new Promise((resolve, reject) => {
    s.on('end', () => resolve({ status: s.response?.status, body: Buffer.concat(chunks), events }));
    s.on('error', reject);
  });
}

/** A streamed response (its head before its body's end): takeWholeBody has nothing, the stream carries it all. */
async function expectStreamedThroughTheStream(w: ReturnType<typeof wire>, takesWholeResponses: boolean): Promise<void> {
  const streamed = await w.open();
  streamed.gw.takesWholeResponses = takesWholeResponses;
  const streamedHead = new Promise((r) => streamed.gw.once('response', r));
  streamed.ag.sendResponse(200, { 'content-type': 'text/event-stream' });
  streamed.ag.write('data: 1\n\n');
  await streamedHead;
  expect(streamed.gw.takeWholeBody()).toBeUndefined();
  const rest = collect(streamed.gw);
  streamed.ag.end('data: 2\n\n');
  expect((await rest).body.toString()).toBe('data: 1\n\ndata: 2\n\n');
}

describe('response frames (protocol 3): a head, its first body chunk and the end in one binary frame', () => {
  it('encodes and decodes head, body and end', () => {
    const frame = encodeResponseFrame(42, { status: 201, headers: { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] } }, Buffer.from('hello'), true);
    expect(frame.readUInt32BE(0)).toBe(0);
    const decoded = decodeResponseFrame(frame, 1024);
    expect(typeof decoded).not.toBe('string');
    if (typeof decoded === 'string') return;
    expect(decoded).toMatchObject({ streamId: 42, end: true, head: { status: 201, headers: { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] } } });
    expect(decoded.body.toString()).toBe('hello');
    const noBody = decodeResponseFrame(encodeResponseFrame(7, { status: 200, headers: {} }, undefined, false), 1024);
    expect(noBody).toMatchObject({ streamId: 7, end: false });
    expect(typeof noBody !== 'string' && noBody.body.byteLength).toBe(0);
  });

  it.each([
    ['shorter than the prefix', Buffer.alloc(RESPONSE_FRAME_PREFIX - 1), /shorter than its 13-byte prefix/],
    ['for stream 0', encodeResponseFrame(1, { status: 200, headers: {} }, undefined, false).fill(0, 4, 8), /stream 0/],
    ['with unknown flags', encodeResponseFrame(1, { status: 200, headers: {} }, undefined, false).fill(0x82, 8, 9), /unknown flags 0x82/],
    ['whose head runs past the frame', (() => { const f = encodeResponseFrame(1, { status: 200, headers: {} }, undefined, false); f.writeUInt32BE(1000, 9); return f; })(), /head length 1000 runs past/],
    ['whose head is larger than allowed', (() => { const f = encodeResponseFrame(1, { status: 200, headers: {} }, undefined, false); f.writeUInt32BE(5000, 9); return f; })(), /head of 5000 bytes exceeds 4096/],
    ['whose head is not JSON', (() => { const f = encodeResponseFrame(1, { status: 200, headers: {} }, undefined, false); f.write('x', RESPONSE_FRAME_PREFIX); return f; })(), /head is not JSON/],
  ])('refuses a frame %s, saying why', (_what, frame, why) => {
    expect(decodeResponseFrame(frame, 4096)).toMatch(why);
  });

  it('a small response is one frame: no text frame, no separate end', async () => {
    const w = wire(true);
    const { gw, ag } = await w.open();
    const got = collect(gw);
    ag.sendResponse(200, { 'content-length': '5' });
    ag.end(Buffer.from('small'));
    const r = await got;
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('small');
    expect(r.events).toEqual(['response', 'data']);
    expect(w.agentSent).toEqual(['binary:response']);
    expect(w.problems).toEqual([]);
    await tick();
    expect(w.agent.size).toBe(0);
    expect(w.gateway.size).toBe(0);
  });

  it('takeWholeBody hands over a body that came whole with its head, and nothing for one still on its way', async () => {
    const w = wire(true);
    const whole = await w.open();
    const head = new Promise((r) => whole.gw.once('response', r));
    whole.ag.sendResponse(200, { 'content-length': '5' });
    whole.ag.end(Buffer.from('small'));
    await head;
    expect(whole.gw.takeWholeBody()?.toString()).toBe('small');
    await tick();
    expect(w.gateway.size).toBe(0);

    const empty = await w.open();
    const emptyHead = new Promise((r) => empty.gw.once('response', r));
    empty.ag.sendResponse(204, { 'content-length': '0' });
    empty.ag.end();
    await emptyHead;
    expect(empty.gw.takeWholeBody()?.byteLength).toBe(0);

    await expectStreamedThroughTheStream(w, false);
    expect(w.problems).toEqual([]);
  });

  it("takeWholeBody reads out a version-2 agent's body of several frames, all of it in order, once its end arrived", async () => {
    const w = wire(false);
    const { gw, ag } = await w.open();
    const body = Buffer.from(Array.from({ length: 2.5 * STREAM_MAX_CHUNK }, (_, i) => i % 251));
    ag.sendResponse(200, { 'content-length': String(body.byteLength) });
    ag.end(body);
    let whole: Buffer | undefined;
    for (let i = 0; i < 1000 && whole === undefined; i++) {
      await tick();
      whole = gw.takeWholeBody();
    }
    expect(w.agentSent).toEqual(['text:stream.response', 'binary:data', 'binary:data', 'binary:data', 'text:stream.end']);
    expect(whole?.equals(body)).toBe(true);
    expect(w.problems).toEqual([]);
  });

  it('a stream that takes whole responses keeps a whole one for takeWholeBody without reading it, and retires at once', async () => {
    const w = wire(true);
    const whole = await w.open();
    whole.gw.takesWholeResponses = true;
    const events: string[] = [];
    for (const e of ['data', 'end', 'close']) whole.gw.on(e, () => events.push(e));
    const head = new Promise((r) => whole.gw.once('response', r));
    whole.ag.sendResponse(200, { 'content-length': '5' });
    whole.ag.end(Buffer.from('small'));
    await head;
    // Retired when the frame arrived: the gateway's mux holds nothing for it any more.
    expect(w.gateway.size).toBe(0);
    expect(whole.gw.takeWholeBody()?.toString()).toBe('small');
    expect(whole.gw.takeWholeBody()).toBeUndefined();
    await tick();
    expect(events).toEqual([]);

    // A streamed response still flows through the readable side.
    await expectStreamedThroughTheStream(w, true);

    // A whole response beyond the credit resets the stream, as data beyond it does.
    const greedy = await w.open();
    greedy.gw.takesWholeResponses = true;
    greedy.ag.on('error', () => undefined);
    const failed = new Promise<Error>((r) => greedy.gw.once('error', r));
    expect(w.gateway.handleData(encodeResponseFrame(greedy.gw.id, { status: 200, headers: {} }, Buffer.alloc(STREAM_INITIAL_WINDOW + 1), true))).toBeUndefined();
    expect((await failed).message).toMatch(/beyond its credit/);
    expect(w.problems).toEqual([]);
  });

  it('sendWholeResponse: head, body and end in one frame without the writable side, then the stream closes', async () => {
    const w = wire(true);
    const { gw, ag } = await w.open();
    expect(ag.canAnswerWhole({ 'content-length': '5' })).toBe(true);
    expect(ag.canAnswerWhole({})).toBe(false); // no declared length: it may stream
    expect(ag.canAnswerWhole({ 'content-length': String(ag.wholeResponseLimit + 1) })).toBe(false);
    const closed = new Promise((r) => ag.once('close', r));
    const got = collect(gw);
    ag.sendWholeResponse(200, { 'content-length': '5' }, Buffer.from('small'));
    await closed;
    expect(ag.sentStatus).toBe(200);
    expect(ag.writableFinished).toBe(false); // never written to: no end, final or finish
    const r = await got;
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('small');
    expect(w.agentSent).toEqual(['binary:response']);
    expect(w.agent.size).toBe(0);
    // Once a head is queued the usual way, the whole path is closed.
    const other = await w.open();
    other.ag.sendResponse(200, { 'content-length': '5' });
    expect(other.ag.canAnswerWhole({ 'content-length': '5' })).toBe(false);
    // Where it cannot answer in one frame it takes the writable side: a body beyond one frame
    // arrives whole all the same, through a response frame, data and stream.end.
    const large = await w.open();
    const big = Buffer.alloc(large.ag.wholeResponseLimit + 1, 7);
    const bigGot = collect(large.gw);
    large.ag.sendWholeResponse(200, { 'content-length': '1' }, big);
    expect((await bigGot).body.equals(big)).toBe(true);
    expect(w.problems).toEqual([]);
  });

  it('a body whose content-length fits one frame is waited for, however late its bytes come: one frame', async () => {
    const w = wire(true);
    const { gw, ag } = await w.open();
    const got = collect(gw);
    ag.sendResponse(200, { 'content-length': '11' });
    for (let i = 0; i < 5; i++) await tick();
    ag.write('hello ');
    for (let i = 0; i < 5; i++) await tick();
    expect(w.agentSent).toEqual([]);
    ag.end('world');
    expect((await got).body.toString()).toBe('hello world');
    expect(w.agentSent).toEqual(['binary:response']);
  });

  it('a streamed response (SSE): the head leaves on the next turn without waiting for a body', async () => {
    const w = wire(true);
    const { gw, ag } = await w.open();
    const got = collect(gw);
    const head = new Promise((r) => gw.once('response', r));
    ag.sendResponse(200, { 'content-type': 'text/event-stream' });
    await head;
    expect(w.agentSent).toEqual(['binary:response']);
    ag.write('data: 1\n\n');
    await tick();
    ag.end('data: 2\n\n');
    const r = await got;
    expect(r.body.toString()).toBe('data: 1\n\ndata: 2\n\n');
    expect(w.agentSent).toEqual(['binary:response', 'binary:data', 'binary:data', 'text:stream.end']);
  });

  it('a large body: the frame carries the first chunk, the rest follows as data, intact and in order', async () => {
    const w = wire(true);
    const { gw, ag } = await w.open();
    const got = collect(gw);
    const body = Buffer.alloc(5 * STREAM_MAX_CHUNK + 123);
    for (let i = 0; i < body.length; i++) body[i] = i % 251;
    ag.sendResponse(200, {});
    ag.end(body);
    const r = await got;
    expect(r.body.equals(body)).toBe(true);
    expect(w.agentSent[0]).toBe('binary:response');
    expect(w.agentSent.filter((f) => f === 'binary:data')).toHaveLength(5);
  });

  it('to a version-2 peer the head is a stream.response text frame, then data and stream.end', async () => {
    const w = wire(false);
    const { gw, ag } = await w.open();
    const got = collect(gw);
    ag.sendResponse(404, {});
    ag.end('nope');
    const r = await got;
    expect(r.status).toBe(404);
    expect(r.body.toString()).toBe('nope');
    expect(w.agentSent).toEqual(['text:stream.response', 'binary:data', 'text:stream.end']);
  });

  it('a head that is not a valid stream.response is a problem that names the field', async () => {
    const w = wire(true);
    const { gw } = await w.open();
    const bad = encodeResponseFrame(gw.id, { status: 700, headers: {} }, undefined, true);
    expect(w.gateway.handleData(bad)).toMatch(/stream \d+: the head is not a valid stream.response \(status: .*/);
    const notObject = Buffer.concat([bad.subarray(0, 9), Buffer.from([0, 0, 0, 1]), Buffer.from('5')]);
    expect(w.gateway.handleData(notObject)).toMatch(/not a valid stream.response/);
    expect(gw.response).toBeUndefined();
  });

  it('its body counts against the credit: a body beyond the window resets the stream', async () => {
    const w = wire(true);
    const { gw, ag } = await w.open();
    ag.on('error', () => undefined); // the agent's side is reset by the gateway's answer
    const failed = new Promise<Error>((r) => gw.once('error', r));
    expect(w.gateway.handleData(encodeResponseFrame(gw.id, { status: 200, headers: {} }, Buffer.alloc(STREAM_INITIAL_WINDOW + 1), false))).toBeUndefined();
    expect((await failed).message).toMatch(/beyond its credit/);
  });
  it.each([
    [true, ['binary:response', 'binary:data', 'text:stream.end']],
    [false, ['text:stream.response', 'binary:data', 'text:stream.end']],
  ])('a bodiless exchange that streams its answer itself (combined responses: %s): head, every byte past the initial window in order, end', async (combined, frameKinds) => {
    const w = wire(combined);
    const { gw, ex } = await w.openBodiless();
    const got = collect(gw);
    const body = Buffer.from(Array.from({ length: STREAM_INITIAL_WINDOW + 3 * STREAM_MAX_CHUNK + 7 }, (_, i) => i % 253));
    const closed = new Promise<void>((r) => ex.once('close', r));
    ex.sendResponse(200, { 'content-type': 'application/octet-stream' });
    let drains = 0;
    for (let off = 0; off < body.byteLength; off += 10_000) {
      // As a writer that honours backpressure: wait for drain after a false.
      if (!ex.write(body.subarray(off, off + 10_000))) await new Promise((r) => ex.once('drain', () => r(drains++)));
    }
    ex.end();
    const r = await got;
    await closed;
    expect(r.status).toBe(200);
    expect(r.body.equals(body)).toBe(true);
    expect(drains).toBeGreaterThan(0);
    // The kinds of frame the agent sent, in order of first appearance.
    expect([...new Set(w.agentSent)]).toEqual(frameKinds);
    expect(w.problems).toEqual([]);
    expect([w.agent.size, ex.sentStatus]).toEqual([0, 200]);
  });
});
