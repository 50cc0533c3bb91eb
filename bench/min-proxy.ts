import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, type Dispatcher } from 'undici';

/**
 * The proxy benchmark's reference point: the least a Node.js proxy can do per request — one
 * process, node:http in front, undici's dispatch API behind (no response Readable, no promise per
 * request, as the agent relays), no tunnel, no auth, no routing. Run as a child process
 * (`node min-proxy.js <upstream origin>`); prints its port on stdout. What it reaches on a machine
 * bounds what any Node proxy, the tunnel included, can reach there.
 */
const upstream = process.argv[2] ?? '';
const dispatcher = new Agent({ keepAliveTimeout: 4_000 });

const server = createServer((req, res) => {
  const handler: Dispatcher.DispatchHandler = {
    onConnect() {},
    onHeaders(status, raw, resume) {
      const headers: string[] = [];
      for (let i = 0; i + 1 < raw.length; i += 2) headers.push(String(raw[i]), String(raw[i + 1]));
      res.writeHead(status, headers);
      res.on('drain', resume);
      return true;
    },
    onData(chunk) {
      return res.write(chunk);
    },
    onComplete() {
      res.end();
    },
    onError() {
      if (res.headersSent) res.destroy();
      else res.writeHead(502).end();
    },
  };
  dispatcher.dispatch({ origin: upstream, path: req.url ?? '/', method: 'GET', headers: [] }, handler);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
