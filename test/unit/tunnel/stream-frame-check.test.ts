import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { streamEndFrame, streamOpenFrame, streamResetFrame, streamResponseFrame, streamWindowFrame } from '../../../src/tunnel/protocol-stream.js';
import { parseAgentFrame, parseGatewayFrame } from '../../../src/tunnel/protocol.js';
import { checkResponseHead, checkStreamFrame } from '../../../src/tunnel/stream-frame-check.js';

const schemas: Record<string, z.ZodType> = {
  'stream.open': streamOpenFrame,
  'stream.response': streamResponseFrame,
  'stream.window': streamWindowFrame,
  'stream.end': streamEndFrame,
  'stream.reset': streamResetFrame,
};

const open = { type: 'stream.open', stream_id: 7, service_id: 'svc-1', method: 'GET', path: '/v1/models?x=1', headers: { accept: '*/*', 'x-many': ['a', 'b'] } };
const response = { type: 'stream.response', stream_id: 7, status: 200, headers: { 'content-type': 'text/plain' } };

/** Valid and invalid frames of every stream type: the hand check must agree with zod on each. */
const cases: Array<Record<string, unknown>> = [
  open,
  { ...open, has_body: true, upgrade: false },
  { ...open, extra: 'dropped' },
  { ...open, headers: {} },
  { ...open, stream_id: 0 },
  { ...open, stream_id: 2 ** 32 },
  { ...open, stream_id: 1.5 },
  { ...open, stream_id: '7' },
  { ...open, service_id: '' },
  { ...open, method: 'TRACE' },
  { ...open, path: 'relative' },
  { ...open, headers: { a: 1 } },
  { ...open, headers: { a: ['x', 2] } },
  { ...open, headers: null },
  { ...open, headers: ['a'] },
  { ...open, has_body: 'yes' },
  { ...open, upgrade: 1 },
  response,
  { ...response, status: 99 },
  { ...response, status: 600 },
  { ...response, status: 200.5 },
  { ...response, headers: undefined },
  { type: 'stream.window', stream_id: 1, credit: 65536 },
  { type: 'stream.window', stream_id: 1, credit: 0 },
  { type: 'stream.window', stream_id: 1 },
  { type: 'stream.end', stream_id: 4294967295 },
  { type: 'stream.end', stream_id: -1 },
  { type: 'stream.end' },
  { type: 'stream.reset', stream_id: 3, code: 'cancelled' },
  { type: 'stream.reset', stream_id: 3, code: 'cancelled', message: 'why' },
  { type: 'stream.reset', stream_id: 3, code: '' },
  { type: 'stream.reset', stream_id: 3, code: 'x', message: 5 },
];

describe('stream frames checked by hand', () => {
  it.each(cases.map((c, i) => [i, c] as const))('case %i agrees with the zod schema', (_i, frame) => {
    const type = frame['type'] as string;
    const zod = schemas[type]!.safeParse(frame);
    const fast = checkStreamFrame(type, frame);
    if (zod.success) expect(fast).toStrictEqual(zod.data);
    else expect(fast).toBeUndefined();
  });

  it.each(cases.filter((c) => c['type'] === 'stream.response').map((c, i) => [i, c] as const))('a response frame head (case %i) is checked as its stream.response', (_i, frame) => {
    const { type: _type, stream_id: id, ...head } = frame;
    const zod = streamResponseFrame.safeParse(frame);
    const fast = checkResponseHead(id as number, head);
    if (zod.success) expect(fast).toStrictEqual(zod.data);
    else expect(fast).toBeUndefined();
  });

  it('a response frame head that is not an object, or names __proto__, is refused', () => {
    for (const head of [null, 'x', [200], 200]) expect(checkResponseHead(1, head)).toBeUndefined();
    expect(checkResponseHead(1, JSON.parse('{"status":200,"headers":{"__proto__":"x"}}'))).toBeUndefined();
    expect(checkResponseHead(0, { status: 200, headers: {} })).toBeUndefined();
  });

  it('a __proto__ header name is left to zod', () => {
    const frame = JSON.parse('{"type":"stream.end","stream_id":1}') as Record<string, unknown>;
    const withProto = JSON.parse(`{"type":"stream.response","stream_id":1,"status":200,"headers":{"__proto__":"x"}}`) as Record<string, unknown>;
    expect(checkStreamFrame('stream.end', frame)).toEqual({ type: 'stream.end', stream_id: 1 });
    expect(checkStreamFrame('stream.response', withProto)).toBeUndefined();
  });

  it('keeps direction: the agent may not send stream.open, and errors still name the field', () => {
    const fromAgent = parseAgentFrame(JSON.stringify(open));
    expect(fromAgent.ok).toBe(false);
    if (!fromAgent.ok) expect(fromAgent.message).toContain('unknown frame type "stream.open"');
    const bad = parseGatewayFrame(JSON.stringify({ ...open, method: 'TRACE' }));
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.message).toMatch(/^stream\.open: method: /);
    const good = parseGatewayFrame(JSON.stringify({ ...open, extra: 1 }));
    expect(good).toEqual({ ok: true, frame: open });
  });
});
