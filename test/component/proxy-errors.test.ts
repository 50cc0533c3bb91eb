import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SK, startProxyRig, type ProxyRig } from '../helpers/proxy-harness.js';
import { waitFor } from '../helpers/wait-for.js';

const auth = { authorization: `Bearer ${SK}` };

/**
 * An upstream that misbehaves on purpose: /hang never answers, /cut sends a head and part of its
 * body then drops the connection (/cutsmall the same with a body that would fit one tunnel
 * frame), /ok answers 200 and counts the bytes of any request body.
 */
async function badUpstream(): Promise<{ server: Server; port: number; hung: () => number }> {
  let hung = 0;
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/hang') {
      hung++;
      return;
    }
    if (path === '/cutsmall') {
      // A small answer (fits one tunnel frame) that dies before its declared end.
      res.writeHead(200, { 'content-length': '100' });
      res.write(Buffer.alloc(10, 97), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    if (path === '/cut') {
      res.writeHead(200, { 'content-length': '1000000' });
      res.write(Buffer.alloc(10_000, 97), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => res.end(JSON.stringify({ bytes })));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, hung: () => hung };
}

/** A port nothing listens on (bound once, then closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

const errorOf = async (res: Awaited<ReturnType<typeof request>>) => ((await res.body.json()) as { error_message: string }).error_message;

describe('proxy error paths: timeouts, body limits, failing and refusing upstreams', () => {
  let rig: ProxyRig;
  let up: Awaited<ReturnType<typeof badUpstream>>;
  let dead: number;
  /** What the proxy told its request observer (the agent's /metrics counts from it). */
  const observed: Array<{ slug: string; status: number; seconds: number }> = [];
  const url = (slug: string, path: string) => `${rig.gateway.url}/api/v1/r/containers/${slug}${path}`;

  beforeAll(async () => {
    up = await badUpstream();
    dead = await closedPort();
    rig = await startProxyRig({ headersTimeoutMs: 300, maxBodyBytes: 4096, metrics: { observeRequest: (slug, status, seconds) => observed.push({ slug, status, seconds }) } });
    const live = { serviceId: '', replicaIndex: 0, containerId: 'live', host: '127.0.0.1', port: up.port };
    const refusing = { serviceId: '', replicaIndex: 1, containerId: 'refusing', host: '127.0.0.1', port: dead };
    await rig.deploy({ service_slug: 'flaky', display_name: 'flaky', docker_image: 'busybox:1' }, [live]);
    await rig.deploy({ service_slug: 'halfdead', display_name: 'halfdead', docker_image: 'busybox:1' }, [refusing, live]);
    await rig.deploy({ service_slug: 'alldead', display_name: 'alldead', docker_image: 'busybox:1' }, [refusing]);
  });

  afterAll(async () => {
    await rig?.close();
    up?.server.closeAllConnections();
    up?.server.close();
  });

  it('answers 504 naming the limit when the service sends no head within proxy.headers_timeout', async () => {
    const res = await request(url('flaky', '/hang'), { headers: auth });
    expect(res.statusCode).toBe(504);
    expect(await errorOf(res)).toMatch(/did not answer within 300 ms/);
    expect(up.hung()).toBeGreaterThan(0);
  });

  it('refuses bodies above proxy.max_body with 413: declared up front, and streamed without a length', async () => {
    const declared = await request(url('flaky', '/ok'), { method: 'POST', headers: { ...auth, 'content-length': '5000' }, body: Buffer.alloc(5000) });
    expect(declared.statusCode).toBe(413);
    expect(await errorOf(declared)).toMatch(/5000 bytes exceeds the agent's proxy.max_body of 4096/);
    const streamed = await request(url('flaky', '/ok'), { method: 'POST', headers: auth, body: Readable.from([Buffer.alloc(3000), Buffer.alloc(3000)]) });
    expect(streamed.statusCode).toBe(413);
    expect(await errorOf(streamed)).toMatch(/exceeds the agent's proxy.max_body of 4096/);
    const fits = await request(url('flaky', '/ok'), { method: 'POST', headers: auth, body: Readable.from([Buffer.alloc(2000), Buffer.alloc(2000)]) });
    expect(await fits.body.json()).toEqual({ bytes: 4000 });
  });

  it('cuts the client connection when the service fails after its head (the body is visibly incomplete)', async () => {
    const res = await request(url('flaky', '/cut'), { headers: auth });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe('1000000');
    await expect(res.body.arrayBuffer()).rejects.toThrow();
  });

  it('a small answer that dies before its declared end reaches the caller as 502, never as a truncated 200', async () => {
    observed.length = 0;
    const res = await request(url('flaky', '/cutsmall'), { headers: auth });
    expect(res.statusCode).toBe(502);
    expect(await errorOf(res)).toMatch(/reset by the peer \(upstream_failed: the upstream failed while streaming its body/);
    // No status reached the caller from the service: the observer counts it as 0 (an error).
    await waitFor('the stream closed', () => observed.length >= 1);
    expect(observed.map(({ slug, status }) => [slug, status])).toEqual([['flaky', 0]]);
  });

  it('a request without a body that a replica refuses is retried once on another ready replica', async () => {
    const statuses = await Promise.all(Array.from({ length: 8 }, async () => (await request(url('halfdead', '/ok'), { headers: auth })).statusCode));
    expect(statuses).toEqual(Array.from({ length: 8 }, () => 200));
  });

  it('answers 502 naming the refusal when no replica accepts the connection', async () => {
    const res = await request(url('alldead', '/ok'), { headers: auth });
    expect(res.statusCode).toBe(502);
    expect(await errorOf(res)).toBe('replica 1 of alldead refused the connection (ECONNREFUSED) and no other replica is ready');
  });

  it('tells the request observer once per request, with the status the caller got (a retried request counts once)', async () => {
    observed.length = 0;
    const statuses = [];
    for (const [slug, path] of [['flaky', '/ok'], ['halfdead', '/ok'], ['alldead', '/ok'], ['flaky', '/hang']] as const) {
      const res = await request(url(slug, path), { headers: auth });
      await res.body.dump();
      statuses.push(res.statusCode);
    }
    expect(statuses).toEqual([200, 200, 502, 504]);
    await waitFor('every stream closed', () => observed.length >= 4);
    expect(observed.map(({ slug, status }) => [slug, status])).toEqual([
      ['flaky', 200],
      ['halfdead', 200],
      ['alldead', 502],
      ['flaky', 504],
    ]);
    expect(observed.every((o) => o.seconds >= 0 && o.seconds < 10)).toBe(true);
    expect(observed.find((o) => o.status === 504)?.seconds).toBeGreaterThanOrEqual(0.25);
  });
});
