import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';

/**
 * The proxy benchmark's reference point: the least a Node.js proxy can do per request — one
 * process, node:http in front, undici behind, no tunnel, no auth, no routing. Run as a child
 * process (`node min-proxy.js <upstream origin>`); prints its port on stdout. What it reaches on a
 * machine bounds what any Node proxy, the tunnel included, can reach there.
 */
const upstream = process.argv[2] ?? '';
const dispatcher = new Agent({ keepAliveTimeout: 4_000 });

const server = createServer((req, res) => {
  request(`${upstream}${req.url ?? '/'}`, { method: 'GET', dispatcher }).then(
    async (up) => {
      res.writeHead(up.statusCode, up.headers as Record<string, string>);
      for await (const chunk of up.body) if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
      res.end();
    },
    () => res.writeHead(502).end(),
  );
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
