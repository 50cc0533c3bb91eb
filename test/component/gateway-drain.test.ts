import { Agent, get, type IncomingMessage } from 'node:http';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SK, startProxyRig, startUpstream, type ProxyRig, type Upstream } from '../helpers/proxy-harness.js';

/**
 * The gateway stops as a mature HTTP server does (found by `npm run bench -- faults`, gateway
 * restarts under load, where requests in progress at a SIGTERM were reset): a proxied request in
 * progress when close() is called is answered in full, and its response says `connection: close`
 * only if it had not started; new connections are refused meanwhile. No connection outlives the
 * response it carries once close() began: a keep-alive client would otherwise send its next
 * request on it just before the close cuts every connection (ECONNRESET, found the same way).
 */
describe('gateway close drains requests in progress', () => {
  let up: Upstream;
  let rig: ProxyRig;

  beforeAll(async () => {
    up = await startUpstream();
    rig = await startProxyRig();
    await rig.deploy({ service_slug: 'drain', display_name: 'drain', docker_image: 'busybox:1' }, [{ serviceId: '', replicaIndex: 0, containerId: 'c0', host: '127.0.0.1', port: up.port }]);
  });

  afterAll(async () => {
    await rig?.client.close();
    await up?.close();
  });

  it('a stream in progress at close() gets all its events, then the gateway is gone', async () => {
    const url = `${rig.gateway.url}/api/v1/r/containers/drain/sse?n=5`;
    const res = await request(url, { headers: { authorization: `Bearer ${SK}` } });
    expect(res.statusCode).toBe(200);
    const body = res.body.text();
    const closed = rig.gateway.close();
    // 5 events 100 ms apart: all arrive although close() began after the first.
    const text = await body;
    expect(text.match(/^data: /gm)).toHaveLength(5);
    await closed;
    await expect(request(url, { headers: { authorization: `Bearer ${SK}` } })).rejects.toThrow();
  });

  it('a keep-alive connection whose response was under way at close() is ended after it, while other streams still drain', async () => {
    const own = await startProxyRig();
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    const open = (n: number): Promise<IncomingMessage> =>
      new Promise((resolve, reject) => get(`${own.gateway.url}/api/v1/r/containers/drain/sse?n=${n}`, { agent, headers: { authorization: `Bearer ${SK}` } }, resolve).on('error', reject));
    try {
      await own.deploy({ service_slug: 'drain', display_name: 'drain', docker_image: 'busybox:1' }, [{ serviceId: '', replicaIndex: 0, containerId: 'c0', host: '127.0.0.1', port: up.port }]);
      const short = await open(2);
      const long = await open(10);
      const shortEnded = new Promise<number>((r) => short.socket.once('end', () => r(Date.now())));
      const longDone = new Promise<number>((r) => long.on('end', () => r(Date.now())).resume());
      short.resume();
      const closed = own.gateway.close();
      // The short stream's connection gets the gateway's FIN once its response is complete, long
      // before the drain ends with the long stream (10 events, 100 ms apart).
      const [endedAt, longAt] = await Promise.all([shortEnded, longDone]);
      expect(endedAt).toBeLessThan(longAt);
      await closed;
    } finally {
      agent.destroy();
      await own.client.close();
    }
  });

  it('a request sent on an idle keep-alive connection just after close() began is answered, not reset', async () => {
    const own = await startProxyRig();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const echo = (): Promise<{ status: number; connection: string | undefined; body: string }> =>
      new Promise((resolve, reject) =>
        get(`${own.gateway.url}/api/v1/r/containers/drain/echo`, { agent, headers: { authorization: `Bearer ${SK}` } }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
        }).on('error', reject),
      );
    try {
      await own.deploy({ service_slug: 'drain', display_name: 'drain', docker_image: 'busybox:1' }, [{ serviceId: '', replicaIndex: 0, containerId: 'c0', host: '127.0.0.1', port: up.port }]);
      const first = await echo(); // the connection is now idle, kept alive
      expect(first.connection).not.toBe('close');
      const closed = own.gateway.close();
      await new Promise((r) => setTimeout(r, 20));
      // Reuses the idle connection: the gateway answers it and ends the connection.
      const late = await echo();
      expect(late.status).toBe(first.status);
      expect(late.connection).toBe('close');
      expect(JSON.parse(late.body)).toMatchObject({ method: 'GET', url: '/echo' });
      await closed;
    } finally {
      agent.destroy();
      await own.client.close();
    }
  });
});
