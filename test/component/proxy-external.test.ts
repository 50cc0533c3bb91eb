import { writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fetch, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import type { Resolve } from '../../src/proxy/upstream-dispatchers.js';
import { SK, startProxyRig, upstreamHandler, type ProxyRig } from '../helpers/proxy-harness.js';
import { generateTestPki } from '../helpers/test-ca.js';

const auth = { authorization: `Bearer ${SK}` };
const CRED_ID = '7f0c2b1e-5d3a-4c1b-9e8f-0a1b2c3d4e5f';
const OTHER_CRED = '11111111-2222-4333-8444-555555555555';

/** Test DNS: names → fixed addresses (nothing leaves the machine). */
const fakeDns: Record<string, string> = {
  'upstream.test': '127.0.0.1',
  'wrong-name.test': '127.0.0.1',
  'private.test': '10.0.0.5',
  'metadata.test': '169.254.169.254',
};
const resolve: Resolve = async (host) => {
  const address = fakeDns[host];
  if (address === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return [{ address, family: 4 }];
};

/** The https test upstream; it also takes WebSocket upgrades (echo), recording their requests. */
async function httpsUpstream(certPem: string, keyPem: string): Promise<{ server: Server; port: number; connections: () => number; upgrades: IncomingMessage[] }> {
  let connections = 0;
  const upgrades: IncomingMessage[] = [];
  const server = createServer({ cert: certPem, key: keyPem }, upstreamHandler({ bytes: 0, closed: false }));
  server.on('connection', () => connections++);
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    upgrades.push(req);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, connections: () => connections, upgrades };
}

describe('external services through the tunnel: credential, https, redirects', () => {
  let rig: ProxyRig;
  let up: Awaited<ReturnType<typeof httpsUpstream>>;

  beforeAll(async () => {
    const pki = await generateTestPki(['upstream.test', 'localhost']);
    up = await httpsUpstream(pki.certPem, pki.keyPem);
    rig = await startProxyRig({ allowPrivateUpstreams: true, upstreamCaPem: pki.caPem, resolve });
    await writeFile(join(rig.dataDir, 'credentials.json'), JSON.stringify({ [CRED_ID]: { value: 'Bearer ext-secret-1' }, [OTHER_CRED]: { value: 'Bearer not-yours' } }), { mode: 0o600 });
    await rig.deploy({ service_slug: 'ext-api', display_name: 'ext', service_type: 'external', external_url: `https://upstream.test:${up.port}/base/`, external_auth_credential_id: CRED_ID });
    await rig.deploy({ service_slug: 'ext-anon', display_name: 'anon', service_type: 'external', external_url: `https://upstream.test:${up.port}` });
    await rig.deploy({ service_slug: 'ext-badname', display_name: 'bad', service_type: 'external', external_url: `https://wrong-name.test:${up.port}` });
  });

  afterAll(async () => {
    await rig?.close();
    up?.server.closeAllConnections();
    up?.server.close();
  });

  it('upgrades a WebSocket to the external service over https with the resolved credential', async () => {
    const ws = new WebSocket(`${rig.gateway.url.replace('http', 'ws')}/api/v1/r/containers/ext-api/ws?x=1`, { headers: { ...auth, cookie: 'session=caller' } });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const echo = new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))));
    ws.send('over https');
    expect(await echo).toBe('over https');
    ws.close();
    const req = up.upgrades.at(-1);
    expect(req?.url).toBe('/base/ws?x=1');
    expect(req?.headers['authorization']).toBe('Bearer ext-secret-1');
    expect(req?.headers['cookie']).toBeUndefined();
  });

  it('sends the resolved credential as Authorization, never the caller\'s', async () => {
    const res = await request(`${rig.gateway.url}/api/v1/r/containers/ext-api/echo?x=1`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain', cookie: 'session=caller' }, body: 'hi' });
    expect(res.statusCode).toBe(201);
    const echoed = (await res.body.json()) as { url: string; body: string; headers: Record<string, string> };
    expect(echoed.url).toBe('/base/echo?x=1');
    expect(echoed.body).toBe('hi');
    expect(echoed.headers['authorization']).toBe('Bearer ext-secret-1');
    expect(echoed.headers['host']).toBe(`upstream.test:${up.port}`);
    expect(echoed.headers['cookie']).toBeUndefined();

    const inv = await fetch(`${rig.gateway.url}/api/v1/r/invoke/ext-api`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ method: 'GET', path: '/echo', headers: { Authorization: 'Bearer caller-token' } }) });
    const out = (await inv.json()) as { status_code: number; body_base64: string };
    expect(out.status_code).toBe(201);
    const viaInvoke = JSON.parse(Buffer.from(out.body_base64, 'base64').toString('utf8')) as { headers: Record<string, string> };
    expect(viaInvoke.headers['authorization']).toBe('Bearer ext-secret-1');
  });

  it('sends no Authorization at all for a service without a credential', async () => {
    const res = await request(`${rig.gateway.url}/api/v1/r/containers/ext-anon/echo`, { headers: auth });
    const echoed = (await res.body.json()) as { headers: Record<string, string> };
    expect(echoed.headers['authorization']).toBeUndefined();
  });

  it('passes a redirect back instead of following it', async () => {
    const res = await request(`${rig.gateway.url}/api/v1/r/containers/ext-anon/redirect`, { headers: auth });
    expect(res.statusCode).toBe(302);
    expect(res.headers['location']).toBe('/echo?from=redirect');
    await res.body.dump();
  });

  it('verifies the certificate against the URL host name while connecting to the checked address', async () => {
    const res = await request(`${rig.gateway.url}/api/v1/r/containers/ext-badname/echo`, { headers: auth });
    expect(res.statusCode).toBe(502);
    expect(((await res.body.json()) as { error_message: string }).error_message).toMatch(/wrong-name\.test|altnames|certificate/i);
  });

  it('maps an unreachable upstream to 502 with error_message', async () => {
    await rig.deploy({ service_slug: 'ext-down', display_name: 'down', service_type: 'external', external_url: 'https://127.0.0.1:1' });
    const res = await request(`${rig.gateway.url}/api/v1/r/containers/ext-down/x`, { headers: auth });
    expect(res.statusCode).toBe(502);
    expect(((await res.body.json()) as { error_message: string }).error_message).toMatch(/ECONNREFUSED|refused/);
  });
});

describe('external services: private, loopback and metadata addresses are refused by default', () => {
  let rig: ProxyRig;
  let up: Awaited<ReturnType<typeof httpsUpstream>>;

  beforeAll(async () => {
    const pki = await generateTestPki(['upstream.test']);
    up = await httpsUpstream(pki.certPem, pki.keyPem);
    rig = await startProxyRig({ allowPrivateUpstreams: false, upstreamCaPem: pki.caPem, resolve });
  });

  afterAll(async () => {
    await rig?.close();
    up?.server.closeAllConnections();
    up?.server.close();
  });

  it.each([
    ['a name resolving to 127.0.0.1', 'upstream.test', /resolves to 127\.0\.0\.1, a loopback address/],
    ['the literal 127.0.0.1', '127.0.0.1', /127\.0\.0\.1 is a loopback address/],
    ['a name resolving to 10.0.0.5', 'private.test', /resolves to 10\.0\.0\.5, a private address/],
    ['the literal 10.1.2.3', '10.1.2.3', /10\.1\.2\.3 is a private address/],
    ['a name resolving to 169.254.169.254', 'metadata.test', /169\.254\.169\.254, the cloud metadata address/],
    ['the literal 169.254.169.254', '169.254.169.254', /the cloud metadata address/],
    ['the literal [::1]', '[::1]', /loopback/],
  ])('refuses %s before connecting', async (_name, host, message) => {
    const slug = `ssrf-${host.replace(/[^a-z0-9]/g, '')}`.slice(0, 40);
    await rig.deploy({ service_slug: slug, display_name: slug, service_type: 'external', external_url: `https://${host}:${up.port}/` });
    const before = up.connections();
    const res = await request(`${rig.gateway.url}/api/v1/r/containers/${slug}/latest/meta-data`, { headers: auth });
    expect(res.statusCode).toBe(502);
    const body = (await res.body.json()) as { error_message: string };
    expect(body.error_message).toMatch(message);
    expect(body.error_message).toMatch(/refused before connecting.*allow_private_upstreams/);
    expect(up.connections()).toBe(before);
  });
});
