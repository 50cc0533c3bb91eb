import { describe, expect, it } from 'vitest';
import { invokePathProblem, parseInvokeRequest } from '../../../src/gateway/invoke-request.js';
import { joinUrl } from '../../../src/proxy/agent-proxy.js';
import { nonPublicKind } from '../../../src/proxy/address-policy.js';
import { fromRawHeaders, stripHopByHop } from '../../../src/tunnel/http-headers.js';
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

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('%s is public', (address) => {
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
});
