import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { fetch, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SK, startProxyRig, startUpstream, type ProxyRig, type Upstream } from '../helpers/proxy-harness.js';
import { pattern, patternSha256, sha256Of } from '../helpers/byte-streams.js';
import { waitFor } from '../helpers/wait-for.js';

const auth = { authorization: `Bearer ${SK}` };

describe('proxy data path: gateway → ws streams → agent proxy → upstream (127.0.0.1)', () => {
  let rig: ProxyRig;
  let up: Upstream;
  let base: string;

  beforeAll(async () => {
    up = await startUpstream();
    rig = await startProxyRig();
    base = await rig.deployLocal('echo', up.port);
  });

  afterAll(async () => {
    await rig?.close();
    await up?.close();
  });

  it('relays GET with its path and query unchanged, and the response status, headers and body', async () => {
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      httpRequest(`${base}/echo/a%20b/c?x=1&y=%2F&x=2`, { headers: { ...auth, 'x-custom': 'v', connection: 'keep-alive, x-drop', 'x-drop': 'no' } }, resolve).on('error', reject).end();
    });
    expect(res.statusCode).toBe(201);
    expect(res.headers['x-upstream']).toBe('yes');
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    let raw = '';
    for await (const c of res) raw += String(c);
    const echoed = JSON.parse(raw) as { method: string; url: string; headers: Record<string, string> };
    expect(echoed.method).toBe('GET');
    expect(echoed.url).toBe('/echo/a%20b/c?x=1&y=%2F&x=2');
    expect(echoed.headers['x-custom']).toBe('v');
    expect(echoed.headers['x-drop']).toBeUndefined();
    expect(echoed.headers['authorization']).toBeUndefined();
    expect(echoed.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('replaces client-sent X-Forwarded-*, Forwarded and X-Real-IP with its own: they never reach the replica', async () => {
    const spoofed = {
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'https',
      'x-forwarded-port': '443',
      'x-forwarded-prefix': '/admin',
      forwarded: 'for=6.6.6.6;host=evil.example;proto=https',
      'x-real-ip': '6.6.6.6',
    };
    const host = new URL(rig.gateway.url).host;
    const expected = { 'x-forwarded-for': '127.0.0.1', 'x-forwarded-host': host, 'x-forwarded-proto': 'http', forwarded: `for=127.0.0.1;host="${host}";proto=http` };
    const check = (headers: Record<string, string>): void => {
      expect(headers).toMatchObject(expected);
      for (const name of ['x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip']) expect(headers[name], name).toBeUndefined();
      expect(JSON.stringify(headers)).not.toMatch(/6\.6\.6\.6|evil\.example|\/admin/);
    };
    const proxied = await request(`${base}/echo/fwd`, { headers: { ...auth, ...spoofed } });
    check(((await proxied.body.json()) as { headers: Record<string, string> }).headers);

    const invoked = await fetch(`${rig.gateway.url}/api/v1/r/invoke/echo`, {
      method: 'POST',
      headers: { ...auth, ...spoofed, 'content-type': 'application/json' },
      body: JSON.stringify({ method: 'GET', path: '/echo/fwd', headers: spoofed }),
    });
    const out = (await invoked.json()) as { body_base64: string };
    check((JSON.parse(Buffer.from(out.body_base64, 'base64').toString('utf8')) as { headers: Record<string, string> }).headers);
  });

  it('relays a POST body (fixed length and chunked)', async () => {
    const fixed = await request(`${base}/echo`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'hello body' });
    expect(((await fixed.body.json()) as { body: string }).body).toBe('hello body');
    async function* gen() {
      yield Buffer.from('part1-');
      yield Buffer.from('part2');
    }
    const chunked = await request(`${base}/echo`, { method: 'PUT', headers: auth, body: Readable.from(gen()) });
    const echoed = (await chunked.body.json()) as { method: string; body: string };
    expect(echoed).toMatchObject({ method: 'PUT', body: 'part1-part2' });
  });

  it('invoke relays method, path, base64 body and headers; answers status, headers, base64 body', async () => {
    const res = await fetch(`${rig.gateway.url}/api/v1/r/invoke/echo`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ method: 'PATCH', path: '/echo/x?q=1', body_base64: Buffer.from('{"k":1}').toString('base64'), headers: { 'X-Custom': 'i', Authorization: 'Bearer leak', Host: 'evil' } }),
    });
    expect(res.status).toBe(200);
    const out = (await res.json()) as { status_code: number; headers: Record<string, unknown>; body_base64: string };
    expect(out.status_code).toBe(201);
    expect(out.headers['x-upstream']).toBe('yes');
    const echoed = JSON.parse(Buffer.from(out.body_base64, 'base64').toString('utf8')) as { method: string; url: string; body: string; headers: Record<string, string> };
    expect(echoed).toMatchObject({ method: 'PATCH', url: '/echo/x?q=1', body: '{"k":1}' });
    expect(echoed.headers['x-custom']).toBe('i');
    expect(echoed.headers['authorization']).toBeUndefined();
    expect(echoed.headers['host']).toBe(`127.0.0.1:${up.port}`);
  });

  it.each([
    ['an absolute URL', 'http://169.254.169.254/latest'],
    ['a network-path reference', '//evil.example/x'],
    ['a backslash host trick', '/\\evil.example'],
    ['no leading slash', 'echo'],
  ])('invoke rejects %s as path', async (_name, path) => {
    const res = await fetch(`${rig.gateway.url}/api/v1/r/invoke/echo`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ method: 'GET', path }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error_message: string }).error_message).toMatch(/path/);
  });

  it('streams SSE events one by one as the upstream emits them', async () => {
    const res = await request(`${base}/sse?n=5`, { headers: auth });
    expect(res.headers['content-type']).toBe('text/event-stream');
    const arrivals: number[] = [];
    let text = '';
    for await (const chunk of res.body) {
      text += String(chunk);
      const events = text.split('\n\n').length - 1;
      while (arrivals.length < events) arrivals.push(Date.now());
    }
    expect(arrivals).toHaveLength(5);
    // Each event arrived in its own read (the upstream spaces them 100 ms apart): no batching.
    expect(new Set(arrivals).size).toBe(5);
  });

  it('serves small requests while a large download is stalled by a slow reader (no head-of-line blocking), with bounded buffering', async () => {
    const big = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      httpRequest(`${base}/bytes?n=${512 * 1024 * 1024}`, { headers: auth }, resolve).on('error', reject).end();
    });
    big.pause();
    await new Promise((r) => setTimeout(r, 300));
    const stalledAt = up.written.bytes;
    const small = await Promise.all(Array.from({ length: 20 }, () => request(`${base}/echo/small`, { headers: auth }).then(async (r) => (await r.body.json(), r.statusCode))));
    expect(small.every((s) => s === 201)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    // The upstream could not push more than socket buffers + per-stream window while nobody read.
    expect(up.written.bytes).toBeLessThan(48 * 1024 * 1024);
    expect(up.written.bytes - stalledAt).toBeLessThan(8 * 1024 * 1024);
    big.destroy();
    await waitFor('upstream saw the abort', () => up.written.closed, 5_000);
  });

  it('a client that leaves before the answer cancels the exchange: the service sees its request closed, and the agent holds nothing', async () => {
    const before = { ...up.hung };
    const req = httpRequest(`${base}/hang`, { headers: auth });
    req.on('error', () => undefined);
    req.end();
    await waitFor('the service got the request', () => up.hung.arrived === before.arrived + 1, 5_000);
    expect(rig.agentStreams.activeStreams).toBe(1);
    req.destroy();
    await waitFor('the service saw its request closed', () => up.hung.closed === before.closed + 1, 5_000);
    await waitFor('the agent holds no exchange', () => rig.agentStreams.activeStreams === 0, 5_000);
    // The tunnel carries on: the next request is answered.
    expect((await request(`${base}/echo/after`, { headers: auth })).statusCode).toBe(201);
  });

  it('carries concurrent downloads and an upload byte for byte (sha-256 at both ends)', async () => {
    const size = 12 * 1024 * 1024 + 12_345;
    const downloads = [1, 2, 3].map(async (seed) => {
      const res = await request(`${base}/pattern?n=${size}&seed=${seed}`, { headers: auth });
      expect(res.statusCode).toBe(200);
      return { seed, ...(await sha256Of(res.body)) };
    });
    const upload = request(`${base}/upload`, { method: 'POST', headers: { ...auth, 'content-length': String(size) }, body: pattern(size, 9) }).then(
      async (res) => (await res.body.json()) as { bytes: number; sha256: string },
    );
    for (const got of await Promise.all(downloads)) expect(got).toEqual({ seed: got.seed, bytes: size, sha256: await patternSha256(size, got.seed) });
    expect(await upload).toEqual({ bytes: size, sha256: await patternSha256(size, 9) });
  });

  it('answers 503 with Retry-After when the agent has no ready replica', async () => {
    const id = await rig.deploy({ service_slug: 'empty', display_name: 'e', docker_image: 'busybox:1' }, []);
    const res = await request(`${rig.gateway.url}/api/v1/r/containers/empty/x`, { headers: auth });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(((await res.body.json()) as { error_message: string }).error_message).toMatch(/no ready replica/);
    expect(id).toBeTruthy();
  });

  it('refuses services that are not deployed', async () => {
    await rig.api('POST', '/containers', { service_slug: 'idle', display_name: 'i', docker_image: 'busybox:1' });
    const res = await request(`${rig.gateway.url}/api/v1/r/containers/idle/x`, { headers: auth });
    expect(res.statusCode).toBe(409);
    await res.body.dump();
    expect((await request(`${rig.gateway.url}/api/v1/r/containers/none/x`, { headers: auth })).statusCode).toBe(404);
  });
});
