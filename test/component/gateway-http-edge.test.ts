import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../src/gateway/gateway-server.js';
import { silentLogger } from '../../src/log.js';
import { rawExchange } from '../helpers/raw-http.js';
import { tempDir } from '../helpers/temp-dirs.js';

const SK = 'sk-http-edge-test-000000000000000';
const AK = 'ak-http-edge-test-000000000000000';
const HEAD_TIMEOUT_MS = 1_000;
const KEEP_ALIVE_MS = 300;
const BODY_IDLE_MS = 500;
/** Node checks head deadlines on an interval (the gateway sets min(1 s, head timeout)). */
const CHECK_INTERVAL_MS = 1_000;

describe('gateway HTTP edge: hostile requests get 4xx or a closed socket, never a dead process', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startGateway({
      port: 0,
      dataDir: await tempDir('http-edge'),
      apiKeys: [SK],
      agentKeys: [{ key: AK, agentId: 'edge-agent' }],
      logger: silentLogger(),
      http: { headTimeoutMs: HEAD_TIMEOUT_MS, keepAliveTimeoutMs: KEEP_ALIVE_MS, bodyIdleTimeoutMs: BODY_IDLE_MS },
    });
  });
  afterAll(async () => gateway?.close());

  const serves = async (): Promise<number> => {
    const res = await request(`${gateway.url}/api/v1/containers`, { headers: { authorization: `Bearer ${SK}` } });
    await res.body.dump();
    return res.statusCode;
  };

  it.each([
    ['an upgrade to an absolute-form target with port 99999', 'GET http://x:99999/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'],
    ['a plain request to the same target', 'GET http://x:99999/ HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['an upgrade with an asterisk target', 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'],
    ['an upgrade to a non-http absolute URL', 'GET file:///etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'],
  ])('answers 400 to %s and keeps serving', async (_name, head) => {
    const answer = await rawExchange(gateway.port, head);
    expect(answer.status).toBe(400);
    expect(answer.text).toMatch(/request-target is not a path this gateway serves/);
    expect(await serves()).toBe(200);
  });

  it('answers CONNECT (it is no forward proxy) with 405 instead of dropping the connection', async () => {
    const answer = await rawExchange(gateway.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    expect(answer.status).toBe(405);
    expect(answer.text).toMatch(/not a forward proxy/);
    expect(answer.closed).toBe(true);
  });

  it('routes an absolute-form request by its path, after checking the key', async () => {
    const answer = await rawExchange(gateway.port, `GET http://elsewhere.example/api/v1/containers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SK}\r\nConnection: close\r\n\r\n`);
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('"page_meta"');
  });

  it('closes a request head that never completes within the head timeout (408)', async () => {
    const answer = await rawExchange(gateway.port, 'GET /api/v1/containers HTTP/1.1\r\nHost: x\r\nX-Slow: ', { timeoutMs: HEAD_TIMEOUT_MS + CHECK_INTERVAL_MS + 3_000 });
    expect(answer.closed).toBe(true);
    expect(answer.status).toBe(408);
    expect(answer.ms).toBeGreaterThanOrEqual(HEAD_TIMEOUT_MS - 50);
    expect(answer.ms).toBeLessThan(HEAD_TIMEOUT_MS + CHECK_INTERVAL_MS + 1_000);
  });

  it('answers 431 to a request head above 16 KiB', async () => {
    const answer = await rawExchange(gateway.port, `GET /api/v1/containers HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
    expect(answer.status).toBe(431);
    expect(answer.closed).toBe(true);
  });

  it.each([
    ['GET', '/nothing-here'],
    ['PATCH', '/api/v1/containers'],
    ['GET', '/api/v1/containers/00000000-0000-0000-0000-000000000000'],
    ['POST', '/api/v1/r/invoke/none'],
    ['GET', '/api/v1/r/containers/none/x'],
    ['GET', '/api/v1/agent/connect'],
  ])('checks the key before routing: %s %s without a key is 401', async (method, path) => {
    const res = await request(`${gateway.url}${path}`, { method: method as 'GET' });
    expect(res.statusCode).toBe(401);
    expect(((await res.body.json()) as { error_message: string }).error_message).toMatch(/Authorization/);
  });

  it('checks the key before routing WebSocket upgrades too (401 on any path)', async () => {
    for (const path of ['/nothing-here', '/api/v1/r/containers/none/x', '/api/v1/agent/connect']) {
      const answer = await rawExchange(gateway.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
      expect(answer.status, path).toBe(401);
      expect(answer.closed, path).toBe(true);
    }
    const withKey = await rawExchange(gateway.port, `GET /nothing-here HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SK}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    expect(withKey.status).toBe(404);
  });

  it('cuts off a request body that stops arriving', async () => {
    const answer = await rawExchange(
      gateway.port,
      `POST /api/v1/containers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SK}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"service_slug":`,
      { timeoutMs: BODY_IDLE_MS + 3_000 },
    );
    expect(answer.closed).toBe(true);
    expect(answer.status).toBeUndefined();
    expect(answer.ms).toBeGreaterThanOrEqual(BODY_IDLE_MS - 50);
    expect(answer.ms).toBeLessThan(BODY_IDLE_MS + 2_000);
    expect((await request(`${gateway.url}/api/v1/containers`, { headers: { authorization: `Bearer ${SK}` } }).then((r) => r.body.json())) as { page_meta: { total_count: number } }).toMatchObject({ page_meta: { total_count: 0 } });
  });

  it('does not drain a body it refuses: 401 with Connection: close, and the socket closes', async () => {
    const answer = await rawExchange(gateway.port, `POST /api/v1/containers HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n${'x'.repeat(1000)}`, { timeoutMs: 3_000 });
    expect(answer.status).toBe(401);
    expect(answer.text.toLowerCase()).toContain('connection: close');
    expect(answer.closed).toBe(true);
    expect(answer.ms).toBeLessThan(BODY_IDLE_MS);
  });

  it('closes an idle keep-alive connection after the keep-alive timeout', async () => {
    const answer = await rawExchange(gateway.port, `GET /api/v1/containers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SK}\r\n\r\n`, { timeoutMs: KEEP_ALIVE_MS + 3_000 });
    expect(answer.status).toBe(200);
    expect(answer.closed).toBe(true);
    expect(answer.ms).toBeGreaterThanOrEqual(KEEP_ALIVE_MS - 50);
    expect(answer.ms).toBeLessThan(KEEP_ALIVE_MS + 1_500);
  });
});
