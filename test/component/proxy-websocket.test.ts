import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { SK, startProxyRig, type ProxyRig } from '../helpers/proxy-harness.js';

const auth = { authorization: `Bearer ${SK}` };

/**
 * A WebSocket upstream (ws library): /ws echoes every message and picks the last sub-protocol the
 * client offers; /ws-bye closes with 4321 after the first message; anything else is a plain 404.
 */
async function startWsUpstream(): Promise<{ port: number; server: Server; seen: IncomingMessage[]; closes: number[]; close(): Promise<void> }> {
  const seen: IncomingMessage[] = [];
  const closes: number[] = [];
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => [...protocols].at(-1) ?? false });
  const server = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('no socket here');
  });
  server.on('upgrade', (req, socket, head) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== '/ws' && path !== '/ws-bye') {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nno socket here');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      seen.push(req);
      ws.on('close', (code) => closes.push(code));
      ws.on('message', (data, isBinary) => {
        if (path === '/ws-bye') ws.close(4321, 'bye');
        else ws.send(data, { binary: isBinary });
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    seen,
    closes,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise((r) => server.close(() => r(undefined)));
    },
  };
}

function connect(url: string, protocols: string[] = [], headers: Record<string, string> = auth): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += String(c)));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })));
    });
    ws.once('error', reject);
  });
}

const nextMessage = (ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> =>
  new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data: data as Buffer, isBinary })));
const closed = (ws: WebSocket): Promise<number> => new Promise((resolve) => ws.once('close', (code) => resolve(code)));

describe('WebSocket pass-through: client → gateway → ws tunnel → agent → upstream', () => {
  let rig: ProxyRig;
  let up: Awaited<ReturnType<typeof startWsUpstream>>;
  let base: string;

  beforeAll(async () => {
    up = await startWsUpstream();
    rig = await startProxyRig();
    await rig.deploy({ service_slug: 'sockets', display_name: 'sockets', docker_image: 'busybox:1' }, [
      { serviceId: '', replicaIndex: 0, containerId: 'c0', host: '127.0.0.1', port: up.port },
    ]);
    base = `${rig.gateway.url.replace('http', 'ws')}/api/v1/r/containers/sockets`;
  });

  afterAll(async () => {
    await rig?.close();
    await up?.close();
  });

  it('upgrades end to end: sub-protocol negotiated by the service, text and a 1 MiB binary message echoed intact', async () => {
    const ws = await connect(`${base}/ws?room=7`, ['chat.v2', 'chat.v1']);
    expect(ws.protocol).toBe('chat.v1');
    const req = up.seen.at(-1);
    expect(req?.url).toBe('/ws?room=7');
    expect(req?.headers['authorization']).toBeUndefined();
    expect(req?.headers['x-forwarded-for']).toBe('127.0.0.1');

    ws.send('hello through the tunnel');
    const text = await nextMessage(ws);
    expect(text).toEqual({ data: Buffer.from('hello through the tunnel'), isBinary: false });

    const blob = randomBytes(1024 * 1024);
    ws.send(blob);
    const echoed = await nextMessage(ws);
    expect(echoed.isBinary).toBe(true);
    expect(echoed.data.equals(blob)).toBe(true);

    const gone = closed(ws);
    ws.close(4000, 'done');
    expect(await gone).toBe(4000);
    await expect.poll(() => up.closes.at(-1)).toBe(4000);
  });

  it('a close from the service reaches the client with its code', async () => {
    const ws = await connect(`${base}/ws-bye`);
    const gone = closed(ws);
    ws.send('anything');
    expect(await gone).toBe(4321);
  });

  it('a service that declines the upgrade answers with its own status and body', async () => {
    await expect(connect(`${base}/not-a-socket`)).rejects.toMatchObject({ status: 404, body: 'no socket here' });
  });

  it('refuses a wrong key, an unknown service and a non-WebSocket upgrade before reaching any agent', async () => {
    const opened = up.seen.length;
    await expect(connect(`${base}/ws`, [], { authorization: 'Bearer sk-wrong' })).rejects.toMatchObject({ status: 401 });
    await expect(connect(`${rig.gateway.url.replace('http', 'ws')}/api/v1/r/containers/nope/ws`)).rejects.toMatchObject({ status: 404 });
    const h2c = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
      httpRequest(`${rig.gateway.url}/api/v1/r/containers/sockets/ws`, { headers: { ...auth, connection: 'Upgrade', upgrade: 'h2c' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += String(c)));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      })
        .on('error', reject)
        .end();
    });
    expect(h2c.status).toBe(400);
    expect(JSON.parse(h2c.body)).toEqual({ error_message: expect.stringContaining('Upgrade: websocket') });
    expect(up.seen.length).toBe(opened);
  });
});

describe('WebSocket pass-through when the tunnel goes away', () => {
  it('closes the client socket when the agent shuts down mid-session (drain timeout, then reset), and the service\'s socket too', async () => {
    const up = await startWsUpstream();
    const rig = await startProxyRig();
    try {
      await rig.deploy({ service_slug: 'sockets', display_name: 'sockets', docker_image: 'busybox:1' }, [
        { serviceId: '', replicaIndex: 0, containerId: 'c0', host: '127.0.0.1', port: up.port },
      ]);
      const ws = await connect(`${rig.gateway.url.replace('http', 'ws')}/api/v1/r/containers/sockets/ws`);
      ws.send('before');
      await nextMessage(ws);
      const gone = closed(ws);
      await rig.client.close();
      expect(await gone).toBe(1006);
      await expect.poll(() => up.closes.length).toBe(1);
    } finally {
      await rig.close();
      await up.close();
    }
  });
});
