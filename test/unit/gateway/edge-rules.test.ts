import { describe, expect, it } from 'vitest';
import { DEFAULT_CONNECTION_LIMITS, LogThrottle, WindowCounter } from '../../../src/gateway/connection-limits.js';
import { Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { ConnectionAuth, KeySet } from '../../../src/gateway/auth.js';
import { forwardedHeaders, withEdgeHeaders } from '../../../src/gateway/forwarded-headers.js';
import { relayedRawHeaders, stripHopByHop } from '../../../src/tunnel/http-headers.js';
import { fromRawHeaders } from '../../helpers/raw-headers.js';
import { DEFAULT_HTTP_EDGE_LIMITS, clientErrorAnswer, parseRequestTarget } from '../../../src/gateway/http-edge.js';
import type { Logger } from '../../../src/log.js';

describe('parseRequestTarget', () => {
  it.each([
    ['/api/v1/containers?x=1', '/api/v1/containers', '?x=1'],
    ['//evil.example/x', '//evil.example/x', ''],
    ['/a/../b', '/b', ''],
    ['http://elsewhere.example/api/v1/containers?q', '/api/v1/containers', '?q'],
    ['https://h:443/p', '/p', ''],
  ])('%s → path %s', (raw, pathname, search) => {
    const url = parseRequestTarget(raw);
    expect(url?.pathname).toBe(pathname);
    expect(url?.search).toBe(search);
    expect(url?.host).toBe('gateway');
  });

  it.each([[undefined], [''], ['*'], ['http://x:99999/'], ['example.com:443'], ['file:///etc/passwd'], ['javascript:alert(1)'], ['http://[::1/']])('refuses %j', (raw) => {
    expect(parseRequestTarget(raw)).toBeUndefined();
  });
});

describe('clientErrorAnswer', () => {
  it.each([
    ['HPE_HEADER_OVERFLOW', 431],
    ['ERR_HTTP_REQUEST_TIMEOUT', 408],
    ['HPE_INVALID_METHOD', 400],
    ['HPE_UNEXPECTED_CONTENT_LENGTH', 400],
    [undefined, 400],
  ])('%s → %i', (code, status) => {
    expect(clientErrorAnswer(code, DEFAULT_HTTP_EDGE_LIMITS)?.status).toBe(status);
  });

  it.each([['ECONNRESET'], ['EPIPE']])('answers nothing to a client that is gone (%s)', (code) => {
    expect(clientErrorAnswer(code, DEFAULT_HTTP_EDGE_LIMITS)).toBeUndefined();
  });
});

describe('withEdgeHeaders', () => {
  const spoofed = { 'x-forwarded-for': '6.6.6.6', 'X-Forwarded-Host': 'evil', 'x-forwarded-proto': 'https', forwarded: 'for=6.6.6.6', 'x-real-ip': '6.6.6.6', 'x-forwarded-prefix': '/a', host: 'gw:8080', authorization: 'Bearer sk-x', 'x-team-id': 't', connection: 'x-drop', 'x-drop': '1', accept: 'text/plain' };

  it.each([
    ['IPv4, with Host', { clientAddress: '10.0.0.7', host: 'gw.example:8080', proto: 'http' as const }, { 'x-forwarded-for': '10.0.0.7', 'x-forwarded-host': 'gw.example:8080', 'x-forwarded-proto': 'http', forwarded: 'for=10.0.0.7;host="gw.example:8080";proto=http' }],
    ['IPv6 over TLS', { clientAddress: '::1', host: 'gw', proto: 'https' as const }, { 'x-forwarded-for': '::1', 'x-forwarded-host': 'gw', 'x-forwarded-proto': 'https', forwarded: 'for="[::1]";host=gw;proto=https' }],
    ['no Host, no address', { clientAddress: undefined, host: undefined, proto: 'http' as const }, { 'x-forwarded-for': 'unknown', 'x-forwarded-proto': 'http', forwarded: 'for=unknown;proto=http' }],
    ['a Host with quotes', { clientAddress: '1.2.3.4', host: 'a"b\\c', proto: 'http' as const }, { 'x-forwarded-host': 'a"b\\c', forwarded: 'for=1.2.3.4;host="a\\"b\\\\c";proto=http' }],
  ])('replaces what the client sent (%s)', (_name, facts, expected) => {
    const out = withEdgeHeaders(spoofed, facts);
    expect(out).toMatchObject(expected);
    expect(out['accept']).toBe('text/plain');
    for (const gone of ['x-real-ip', 'x-forwarded-prefix', 'host', 'authorization', 'x-team-id', 'connection', 'x-drop']) expect(out[gone], gone).toBeUndefined();
    if (facts.host === undefined) expect(out['x-forwarded-host']).toBeUndefined();
    expect(JSON.stringify(out)).not.toContain('6.6.6.6');
  });
});

describe('WindowCounter', () => {
  it('allows `limit` events per window, counting again from the first event after it', () => {
    const c = new WindowCounter(3, 1000);
    expect([0, 10, 20, 30].map((t) => c.hit(t))).toEqual([true, true, true, false]);
    expect(c.hit(999)).toBe(false);
    expect([1000, 1001, 1002, 1003].map((t) => c.hit(t))).toEqual([true, true, true, false]);
  });
});

describe('LogThrottle', () => {
  it('writes `perWindow` lines per window and sums the rest up once the next window opens', () => {
    const lines: Array<[string, Record<string, unknown>, string]> = [];
    const logger = {
      warn: (fields: Record<string, unknown>, msg: string) => lines.push(['warn', fields, msg]),
      error: (fields: Record<string, unknown>, msg: string) => lines.push(['error', fields, msg]),
    } as unknown as Logger;
    let now = 0;
    const t = new LogThrottle(() => logger, 2, 1000, () => now);
    for (let i = 0; i < 5; i++) t.warn({ i }, 'bad frame');
    expect(lines.map((l) => l[1]['i'])).toEqual([0, 1]);
    now = 1000;
    t.error({ i: 5 }, 'handler failed');
    expect(lines.slice(2)).toEqual([
      ['warn', { suppressed: 3, windowMs: 1000 }, 'more warnings of this kind were not logged (rate limit)'],
      ['error', { i: 5 }, 'handler failed'],
    ]);
  });

  it('documents its defaults as the per-connection limits', () => {
    expect(DEFAULT_CONNECTION_LIMITS).toMatchObject({ maxInvalidFrames: 100, invalidWindowMs: 60_000, logLinesPerWindow: 10, sendBufferLimitBytes: 16 * 1024 * 1024 });
  });
});

describe('relayedRawHeaders', () => {
  const drop = new Set(['host', 'authorization']);
  it.each([
    [['Host', 'gw', 'Accept', '*/*', 'User-Agent', 'x']],
    [['Host', 'gw', 'Connection', 'keep-alive, X-Secret', 'X-Secret', 's', 'Keep-Alive', 'timeout=5', 'TE', 'trailers', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Authorization', 'Bearer x']],
    [['connection', 'close', 'CONNECTION', 'x-a', 'X-A', '1', 'x-b', '2', 'x-b', '3', 'x-b', '4']],
    [['Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'Proxy-Authorization', 'p', 'Content-Length', '3']],
    [['Connection', 'Keep-Alive', 'Close', 'c', 'Keep-Alive', 'timeout=5', 'Accept', '*/*']],
    [['Connection', 'close', 'Connection', 'X-Gone', 'X-Gone', '1', 'Close', 'c']],
    [[]],
  ])('agrees with stripHopByHop(fromRawHeaders(raw)) for %j', (raw) => {
    expect(relayedRawHeaders(raw, drop)).toStrictEqual(stripHopByHop(fromRawHeaders(raw), [...drop]));
  });
});

describe('forwardedHeaders', () => {
  const request = (rawHeaders: string[], remoteAddress: string): IncomingMessage => {
    const headers = fromRawHeaders(rawHeaders);
    return { rawHeaders, headers: { host: headers['host'] }, socket: { remoteAddress } } as unknown as IncomingMessage;
  };

  it('is withEdgeHeaders of the parsed headers, for one client after another', () => {
    const cases: Array<[string[], string]> = [
      [['Host', 'gw.example', 'Authorization', 'Bearer sk-x', 'X-Forwarded-For', '6.6.6.6', 'Accept', '*/*'], '10.0.0.1'],
      [['Host', 'gw.example', 'Accept', '*/*'], '10.0.0.1'],
      [['Host', 'other host', 'Forwarded', 'for=evil'], '::1'],
      [['Accept', '*/*'], '10.0.0.2'],
    ];
    for (const [raw, address] of cases) {
      const req = request(raw, address);
      const parsed = fromRawHeaders(raw);
      const expected = withEdgeHeaders(parsed, { clientAddress: address, host: parsed['host'] as string | undefined, proto: 'http' });
      expect(forwardedHeaders(req)).toStrictEqual(expected);
    }
  });
});

describe('ConnectionAuth', () => {
  class CountingKeys extends KeySet {
    checks = 0;
    override has(key: string): boolean {
      this.checks += 1;
      return super.has(key);
    }
  }
  const good = 'Bearer sk-good-key-0123456789';

  it("checks a connection's key once, and any other header on it in full", () => {
    const keys = new CountingKeys(['sk-good-key-0123456789']);
    const auth = new ConnectionAuth(keys);
    const a = new Socket();
    expect(auth.check(a, good)).toMatchObject({ ok: true, keyKind: 'sk' });
    expect(auth.check(a, good)).toMatchObject({ ok: true, keyKind: 'sk' });
    expect(keys.checks).toBe(1);
    // Same length, other content: checked in full, refused.
    expect(auth.check(a, 'Bearer sk-good-key-0123456780')).toMatchObject({ ok: false, status: 401 });
    expect(auth.check(a, undefined)).toMatchObject({ ok: false, status: 401 });
    expect(keys.checks).toBe(2);
    // Another connection is checked on its own.
    const b = new Socket();
    expect(auth.check(b, good)).toMatchObject({ ok: true });
    expect(keys.checks).toBe(3);
  });

  it('remembers no refused key', () => {
    const keys = new CountingKeys(['sk-good-key-0123456789']);
    const auth = new ConnectionAuth(keys);
    const a = new Socket();
    expect(auth.check(a, 'Bearer sk-wrong')).toMatchObject({ ok: false, status: 401 });
    expect(auth.check(a, 'Bearer sk-wrong')).toMatchObject({ ok: false, status: 401 });
    expect(auth.check(a, 'Bearer ak-agent')).toMatchObject({ ok: false, status: 403 });
    expect(keys.checks).toBe(2);
  });
});
