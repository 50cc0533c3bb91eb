import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { invokePathProblem, parseInvokeRequest } from '../../../src/gateway/invoke-request.js';
import { joinUrl } from '../../../src/proxy/agent-proxy.js';
import { nonPublicKind } from '../../../src/proxy/address-policy.js';
import { relayableHeaders, stripHopByHop, type WireHeaders } from '../../../src/tunnel/http-headers.js';
import { fromRawHeaders } from '../../helpers/raw-headers.js';
import { ReplicaPicker } from '../../../src/proxy/replica-picker.js';

describe('nonPublicKind', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.0.0.5', 'private'],
    ['172.16.3.4', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fd12::1', 'private'],
    ['169.254.169.254', 'metadata'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fd00:ec2::254', 'metadata'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['0.0.0.0', 'reserved'],
    ['224.0.0.1', 'reserved'],
    ['::', 'reserved'],
    ['not-an-ip', 'reserved'],
  ])('%s is %s', (address, kind) => {
    expect(nonPublicKind(address)).toBe(kind);
  });

  it.each([
    // 6to4 2002::/16: refused whatever it carries; the IPv4 in groups 1-2 names the kind.
    ['2002:a00:1::1', 'private', '6to4 of 10.0.0.1'],
    ['2002:7f00:1::1', 'loopback', '6to4 of 127.0.0.1'],
    ['2002:a9fe:a9fe::1', 'metadata', '6to4 of 169.254.169.254'],
    ['2002:808:808::1', 'reserved', '6to4 of a public IPv4'],
    ['192.88.99.1', 'reserved', '6to4 relay anycast'],
    // Teredo 2001::/32: server IPv4 in groups 2-3, client IPv4 inverted in groups 6-7.
    ['2001:0:4136:e378:8000:63bf:f5ff:fffe', 'private', 'Teredo, client 10.0.0.1'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback', 'Teredo, client 127.0.0.1'],
    ['2001:0:a00:1:8000:63bf:f7f7:f7f7', 'private', 'Teredo, server 10.0.0.1, public client'],
    ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', 'reserved', 'Teredo, all public'],
    // NAT64 local-use 64:ff9b:1::/48: refused.
    ['64:ff9b:1::a00:1', 'reserved', 'NAT64 local-use'],
    ['64:ff9b:1:ffff::808:808', 'reserved', 'NAT64 local-use, public IPv4'],
    // NAT64 well-known 64:ff9b::/96: judged by the IPv4 inside.
    ['64:ff9b::7f00:1', 'loopback', 'NAT64 well-known of 127.0.0.1 (hex)'],
    // IPv4-compatible ::/96 (deprecated): refused.
    ['::10.0.0.1', 'private', 'IPv4-compatible 10.0.0.1'],
    ['::a00:1', 'private', 'IPv4-compatible 10.0.0.1 (hex)'],
    ['::8.8.8.8', 'reserved', 'IPv4-compatible public'],
    // IPv4-translated ::ffff:0:0:0/96: refused.
    ['::ffff:0:10.0.0.1', 'private', 'IPv4-translated 10.0.0.1'],
    ['::ffff:0:808:808', 'reserved', 'IPv4-translated public'],
    // IPv4-mapped ::ffff:0:0/96: judged by the IPv4 inside, in every spelling.
    ['::ffff:a00:1', 'private', 'mapped 10.0.0.1 (hex)'],
    ['0:0:0:0:0:ffff:127.0.0.1', 'loopback', 'mapped, uncompressed'],
    ['::FFFF:A9FE:A9FE', 'metadata', 'mapped, upper case'],
    // Discard-only 100::/64.
    ['100::1', 'reserved', 'discard-only'],
    ['100::ffff:1', 'reserved', 'discard-only, high bits'],
  ])('%s is %s (%s)', (address, kind) => {
    expect(nonPublicKind(address)).toBe(kind);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8', '100:0:0:1::1', '2001:1::1'])('%s is public', (address) => {
    expect(nonPublicKind(address)).toBeUndefined();
  });
});

describe('invoke paths', () => {
  it.each(['/', '/v1/models', '/a/b?x=1&y=http://z', '/%2F%2Fhost', '/a//b'])('%s is accepted', (path) => {
    expect(invokePathProblem(path)).toBeUndefined();
  });

  it.each([
    ['http://169.254.169.254/', /must start with "\/"/],
    ['//evil.example/x', /must not start with "\/\/"/],
    ['/\\evil.example', /backslash/],
    ['/a b', /whitespace/],
    ['/a\r\nHost: x', /control/],
    ['v1/models', /must start with/],
  ])('%s is refused', (path, message) => {
    expect(invokePathProblem(path)).toMatch(message);
  });

  it('validates the whole body and decodes base64', () => {
    expect(parseInvokeRequest({ method: 'POST', path: '/x', body_base64: 'aGk=', headers: { 'X-A': '1' } })).toEqual({ ok: true, value: { method: 'POST', path: '/x', body: Buffer.from('hi'), headers: { 'x-a': '1' } } });
    const bad = parseInvokeRequest({ method: 'POST', path: '//x', body_base64: 'not base64!', headers: { 'bad name': 'v' } });
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.message).toMatch(/path.*base64.*header name/);
    expect(parseInvokeRequest({ method: 'TRACE', path: '/' }).ok).toBe(false);
  });
});

describe('hop-by-hop headers', () => {
  it('drops RFC 9110 connection fields, those named in Connection, and the extra names', () => {
    const h = fromRawHeaders(['Host', 'gw', 'Connection', 'keep-alive, X-Secret', 'X-Secret', 's', 'Keep-Alive', 'timeout=5', 'TE', 'trailers', 'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'Proxy-Authorization', 'p', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Authorization', 'Bearer x', 'Content-Length', '3']);
    expect(stripHopByHop(h, ['host', 'authorization'])).toEqual({ 'set-cookie': ['a=1', 'b=2'], 'content-length': '3' });
  });

  it('Connection: keep-alive or close names no field to drop (close is a connection option, keep-alive hop-by-hop anyway)', () => {
    for (const value of ['keep-alive', 'Keep-Alive', 'close', 'CLOSE', 'close, keep-alive']) {
      const h = fromRawHeaders(['Connection', value, 'Keep-Alive', 'timeout=5', 'Close', 'kept', 'Accept', '*/*']);
      expect(stripHopByHop(h)).toEqual({ close: 'kept', accept: '*/*' });
    }
    // A token that names a field still drops it, next to the common ones.
    expect(stripHopByHop(fromRawHeaders(['Connection', 'close, X-Secret', 'X-Secret', 's', 'Accept', '*/*']))).toEqual({ accept: '*/*' });
  });

  it('relayableHeaders keeps a clean map as it is and strips any other as stripHopByHop does', () => {
    const clean = { accept: '*/*', 'x-forwarded-for': '10.0.0.1', 'set-cookie': ['a=1', 'b=2'] };
    expect(relayableHeaders(clean, ['host'])).toBe(clean);
    const dirties: WireHeaders[] = [{ ...clean, host: 'gw' }, { ...clean, connection: 'close' }, { ...clean, 'Keep-Alive': 'timeout=5' }, { ...clean, 'X-Upper': 'v' }, { te: 'trailers' }];
    for (const dirty of dirties) {
      const out = relayableHeaders(dirty, ['host']);
      expect(out).not.toBe(dirty);
      expect(out).toStrictEqual(stripHopByHop(dirty, ['host']));
    }
  });
});

describe('joinUrl', () => {
  it.each([
    ['https://api.example/v1/', '/chat?x=1', 'https://api.example/v1/chat?x=1'],
    ['https://api.example', '/chat', 'https://api.example/chat'],
    ['https://api.example/base?key=k', '/a?b=c', 'https://api.example/base/a?key=k&b=c'],
  ])('%s + %s', (base, path, out) => {
    expect(joinUrl(new URL(base), path)).toBe(out);
  });
});

describe('ReplicaPicker', () => {
  const ep = (id: string) => ({ serviceId: 's', replicaIndex: 0, containerId: id, host: '10.0.0.1', port: 80 });
  it('prefers the replica with the fewest outstanding requests, rotating ties', () => {
    const picker = new ReplicaPicker();
    const eps = [ep('a'), ep('b')];
    const first = picker.pick(eps)!;
    const done = picker.begin(first);
    expect(picker.pick(eps)!.containerId).not.toBe(first.containerId);
    expect(picker.pick(eps)!.containerId).not.toBe(first.containerId);
    done();
    expect(picker.inFlight(first.containerId)).toBe(0);
    expect(new Set([picker.pick(eps)!.containerId, picker.pick(eps)!.containerId]).size).toBe(2);
    expect(picker.pick([])).toBeUndefined();
  });

  it('counts a request whose stream is still open until that stream closes, once', () => {
    const picker = new ReplicaPicker();
    const stream = Object.assign(new EventEmitter(), { destroyed: false });
    picker.begin(ep('a'))(stream);
    picker.begin(ep('a'))();
    expect(picker.inFlight('a')).toBe(1);
    stream.emit('close');
    stream.emit('close');
    expect(picker.inFlight('a')).toBe(0);
    const closed = Object.assign(new EventEmitter(), { destroyed: true });
    picker.begin(ep('b'))(closed);
    expect([picker.inFlight('b'), closed.listenerCount('close')]).toEqual([0, 0]);
  });
});
