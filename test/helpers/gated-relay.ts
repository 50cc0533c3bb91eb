import { connect, createServer, type Socket } from 'node:net';
import { removePulledImages } from './local-registry.js';

/**
 * A loopback TCP relay to `target` that holds every connection until `open()`: a registry reached
 * through it makes a pull wait, for as long as a test needs, at a known point (the first request).
 */
export interface GatedRelay {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** Connections waiting for the gate. */
  held(): number;
  /** Lets held and later connections through. */
  open(): void;
  /** Stops relaying and removes the images pulled through it (call after the suite's sweep). */
  close(): Promise<void>;
}

export async function startGatedRelay(targetHost: string, targetPort: number): Promise<GatedRelay> {
  let isOpen = false;
  const waiting: Socket[] = [];
  const sockets = new Set<Socket>();
  const pipe = (client: Socket): void => {
    const upstream = connect(targetPort, targetHost);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.resume();
  };
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (isOpen) {
      pipe(client);
    } else {
      client.pause();
      waiting.push(client);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    held: () => waiting.filter((s) => !s.destroyed).length,
    open() {
      isOpen = true;
      for (const client of waiting.splice(0)) if (!client.destroyed) pipe(client);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await removePulledImages(`127.0.0.1:${port}`);
    },
  };
}
