import { describe, expect, it } from 'vitest';
import { logQueryParams, parseLogQuery } from '../../../src/domain/log-entry.js';
import { logEntries, MAX_LINE } from '../../../src/runtime/container-logs.js';

function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

async function all(chunks: Buffer[]) {
  const out = [];
  for await (const e of logEntries(chunks)) out.push(e);
  return out;
}

describe('logEntries: the engine\'s multiplexed log frames → entries', () => {
  it('splits streams and lines, reads the timestamp, and reassembles frames and lines cut anywhere', async () => {
    const bytes = Buffer.concat([
      frame(1, '2026-12-02T10:00:00.000000001Z serving on :8080\n2026-12-02T10:00:00.5Z two '),
      frame(2, '2026-12-02T10:00:01.000000000Z oops\r\n'),
      frame(1, 'parts\n'),
    ]);
    const expected = [
      { stream: 'stdout', time: '2026-12-02T10:00:00.000000001Z', line: 'serving on :8080' },
      { stream: 'stderr', time: '2026-12-02T10:00:01.000000000Z', line: 'oops' },
      { stream: 'stdout', time: '2026-12-02T10:00:00.5Z', line: 'two parts' },
    ];
    expect(await all([bytes])).toEqual(expected);
    // The same bytes one at a time: frame headers and UTF-8 split across chunks.
    expect(await all([...bytes].map((b) => Buffer.from([b])))).toEqual(expected);
  });

  it('keeps a line without a timestamp, ends an unterminated last line, and cuts a line longer than MAX_LINE', async () => {
    const long = 'x'.repeat(MAX_LINE + 10);
    const out = await all([frame(1, `no stamp here\n${long}`), frame(2, 'é tail')]);
    expect(out.map((e) => [e.stream, e.time, e.line.length])).toEqual([
      ['stdout', '', 13],
      ['stdout', '', MAX_LINE],
      ['stdout', '', 10],
      ['stderr', '', 6],
    ]);
  });
});

describe('parseLogQuery', () => {
  it('defaults to the last 100 lines of every replica, no follow', () => {
    expect(parseLogQuery(new URLSearchParams(''))).toEqual({ ok: true, query: { tail: 100, sinceSeconds: undefined, replica: undefined, follow: false } });
  });

  it.each<[string, { tail: number; sinceSeconds: number | undefined; replica: number | undefined; follow: boolean }]>([
    ['tail=0&follow=true', { tail: 0, sinceSeconds: undefined, replica: undefined, follow: true }],
    ['tail=10000&replica=3&follow=0', { tail: 10_000, sinceSeconds: undefined, replica: 3, follow: false }],
    ['since=1764669600', { tail: 100, sinceSeconds: 1764669600, replica: undefined, follow: false }],
    ['since=2025-12-02T10:00:00Z', { tail: 100, sinceSeconds: 1764669600, replica: undefined, follow: false }],
    ['since=2025-12-02T11:00:00.750%2B01:00', { tail: 100, sinceSeconds: 1764669600, replica: undefined, follow: false }],
  ])('%s', (query, expected) => {
    const parsed = parseLogQuery(new URLSearchParams(query));
    expect(parsed).toEqual({ ok: true, query: expected });
    if (parsed.ok) expect(parseLogQuery(new URLSearchParams(logQueryParams(parsed.query)))).toEqual(parsed);
  });

  it('names every bad parameter at once', () => {
    const parsed = parseLogQuery(new URLSearchParams('tail=10001&since=soon&replica=-1&follow=yes&x=1&tail=2'));
    expect(parsed).toEqual({
      ok: false,
      problems: [
        'tail is given more than once',
        'unknown parameter "x" (use tail, since, replica, follow)',
        'tail "10001" is not a whole number from 0 to 10000',
        'since "soon" is not a time; write RFC 3339 (2026-12-02T10:00:00Z) or unix seconds',
        'replica "-1" is not a replica index (0, 1, …)',
        'follow "yes" is not true or false',
      ],
    });
  });
});
