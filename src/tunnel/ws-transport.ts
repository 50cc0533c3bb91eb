import type { MuxTransport } from './stream-mux.js';

/** The part of a `ws` WebSocket the transport uses. */
export interface FrameSocket {
  readonly readyState: number;
  send(data: string | Buffer, options: { binary: boolean }, cb?: (err?: Error) => void): void;
}

/** The TCP (or TLS) socket under the WebSocket; `cork`/`uncork` as on net.Socket. */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

const OPEN = 1;

/**
 * The MuxTransport of one tunnel connection, and the one way every frame of it is sent.
 *
 * Write batching: the first frame of an event-loop turn corks the socket and a setImmediate
 * uncorks it, so every frame produced in that turn — the response head, body and end of one
 * exchange, and the frames of every other stream served in the same turn — leaves in one writev
 * instead of one syscall per frame. Nothing waits for a later turn: setImmediate runs right after
 * the I/O callbacks (and their ticks) that produced the frames.
 */
export class WsTransport implements MuxTransport {
  private corked = false;

  constructor(
    private readonly ws: FrameSocket,
    private readonly socket: Corkable | undefined,
  ) {}

  get open(): boolean {
    return this.ws.readyState === OPEN;
  }

  sendText(text: string): void {
    if (!this.open) return;
    this.hold();
    this.ws.send(text, { binary: false });
  }

  sendBinary(frame: Buffer, written: () => void): void {
    if (!this.open) {
      written();
      return;
    }
    this.hold();
    this.ws.send(frame, { binary: true }, () => written());
  }

  private hold(): void {
    if (this.corked || this.socket === undefined) return;
    this.corked = true;
    this.socket.cork();
    setImmediate(this.release);
  }

  private readonly release = (): void => {
    this.corked = false;
    this.socket?.uncork();
  };
}
