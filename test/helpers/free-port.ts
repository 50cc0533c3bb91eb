import { createServer, type AddressInfo } from 'node:net';

/** A loopback port that was free a moment ago (bound once, then closed): another process may take it. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}
