import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { SK, startProxyRig, startUpstream, type ProxyRig, type Upstream } from '../helpers/proxy-harness.js';
import { waitFor } from '../helpers/wait-for.js';

const auth = { authorization: `Bearer ${SK}` };
const STALL_MS = 1_000;

function get(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    httpRequest(url, { headers: auth }, resolve).on('error', reject).end();
  });
}

describe('a client that stops reading a proxied response is cut off after the send-stall timeout (http.sendStallTimeoutMs)', () => {
  let rig: ProxyRig;
  let up: Upstream;
  let base: string;
  const lines: Array<{ msg: string; [key: string]: unknown }> = [];

  beforeAll(async () => {
    up = await startUpstream();
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) } });
    rig = await startProxyRig({}, { logger, http: { sendStallTimeoutMs: STALL_MS } });
    base = await rig.deployLocal('stall', up.port);
  });

  afterAll(async () => {
    await rig?.close();
    await up?.close();
  });

  it('closes the connection of a download nobody reads, says so once in the log, and the service sees its request end', async () => {
    const res = await get(`${base}/bytes?n=${512 * 1024 * 1024}`);
    expect(res.statusCode).toBe(200);
    res.pause();
    // Cut off once the kernel's buffers filled and the stall lasted STALL_MS: the gateway resets
    // the stream, and the service sees its request close.
    await waitFor('the service saw its request close', () => up.written.closed, 15_000);
    const said = lines.filter((l) => l.msg === 'client stopped reading: connection closed');
    expect(said).toHaveLength(1);
    expect(said[0]).toMatchObject({ slug: 'stall', relay: 'response', stalledMs: STALL_MS });
    // The client, reading again, gets what was on its way and then the cut: no complete response.
    let received = 0;
    res.on('data', (chunk: Buffer) => (received += chunk.byteLength));
    await new Promise<void>((resolve) => {
      res.once('close', resolve);
      res.resume();
    });
    expect(res.complete).toBe(false);
    expect(received).toBeLessThan(512 * 1024 * 1024);
  }, 30_000);

  it('keeps a client that reads slowly but keeps reading, to the last byte', async () => {
    const n = 160 * 1024 * 1024;
    const res = await get(`${base}/bytes?n=${n}`);
    let received = 0;
    let pauses = 0;
    res.on('data', (chunk: Buffer) => (received += chunk.byteLength));
    res.pause();
    // Reads in bursts: 500 ms paused (half of STALL_MS, long enough to fill every buffer on the
    // way), then 100 ms of reading (short, so that even a fast transfer spans several pauses).
    const done = new Promise<void>((resolve, reject) => {
      res.once('end', resolve);
      res.once('close', () => (res.complete ? resolve() : reject(new Error(`cut off after ${received} bytes`))));
    });
    let over = false;
    void done.finally(() => (over = true)).catch(() => undefined);
    while (!over) {
      await new Promise((r) => setTimeout(r, 500));
      res.resume();
      await new Promise((r) => setTimeout(r, 100));
      if (!over) {
        res.pause();
        pauses++;
      }
    }
    await done;
    expect(received).toBe(n);
    // Paused longer than STALL_MS in all (three pauses: 1.5 s), yet never cut off.
    expect(pauses * 500).toBeGreaterThan(STALL_MS);
    expect(pauses).toBeGreaterThanOrEqual(3);
  }, 90_000);

  it('keeps a client that pauses for longer than the timeout while nothing waits for it at the gateway (events that fit the socket buffers)', async () => {
    // /sse?n=2 sends an event, then the next one 100 ms later; the client takes both after a
    // pause longer than STALL_MS in which nothing waited for it.
    const res = await get(`${base}/sse?n=2`);
    res.pause();
    await new Promise((r) => setTimeout(r, 2 * STALL_MS));
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (text += c));
    const ended = new Promise<void>((resolve) => res.once('end', resolve));
    res.resume();
    await ended;
    expect(text.split('\n\n').length - 1).toBe(2);
  }, 20_000);

  it('closes a passed-through WebSocket whose client stopped reading what the service sends', async () => {
    // A service that sends 256 KiB messages as fast as its socket takes them, until it is closed.
    const wss = new WebSocketServer({ noServer: true });
    let serviceClosed = false;
    const server = createServer((_req, res) => res.writeHead(404).end());
    server.on('upgrade', (req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('close', () => (serviceClosed = true));
        const flood = (): void => {
          while (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < 1024 * 1024) ws.send(Buffer.alloc(256 * 1024));
          if (ws.readyState === WebSocket.OPEN) setTimeout(flood, 10);
        };
        flood();
      }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const flood = await rig.deployLocal('flood', (server.address() as AddressInfo).port);
      const client = new WebSocket(`${flood.replace('http', 'ws')}/ws`, { headers: auth });
      await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
      // The client stops reading its socket.
      (client as unknown as { _socket: { pause(): void } })._socket.pause();
      await waitFor('the service saw its socket close', () => serviceClosed, 15_000);
      expect(lines.filter((l) => l.msg === 'client stopped reading: connection closed' && l['relay'] === 'websocket')).toHaveLength(1);
      client.terminate();
    } finally {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }, 30_000);
});
