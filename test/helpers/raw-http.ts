import { connect } from 'node:net';

/** What one raw exchange with an HTTP server produced. */
export interface RawExchange {
  /** Everything the server sent (latin1), up to `maxBytes`. */
  text: string;
  /** Status code of the first response line, if any. */
  status: number | undefined;
  /** The server closed the connection (or it was reset) before the deadline. */
  closed: boolean;
  /** Milliseconds from the connect to the close (or to the deadline). */
  ms: number;
}

/**
 * Sends `bytes` on a fresh TCP connection to 127.0.0.1:`port` and collects the answer until the
 * server closes the connection or `timeoutMs` passes. `halfClose` ends our side after sending (a
 * client that is done writing). Never rejects.
 */
export function rawExchange(port: number, bytes: Buffer | string, options: { halfClose?: boolean; timeoutMs?: number; maxBytes?: number } = {}): Promise<RawExchange> {
  const { halfClose = false, timeoutMs = 5000, maxBytes = 64 * 1024 } = options;
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ text, status: match ? Number(match[1]) : undefined, closed, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('connect', () => {
      socket.write(bytes);
      if (halfClose) socket.end();
    });
    socket.on('data', (chunk: Buffer) => {
      if (size < maxBytes) chunks.push(chunk);
      size += chunk.byteLength;
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
  });
}
