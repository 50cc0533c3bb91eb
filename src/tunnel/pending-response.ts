import type { StreamResponseFrame } from './protocol-stream.js';
import type { TunnelStream } from './tunnel-stream.js';

/** Where the answer to a bodiless request goes (StreamMux.request). Each call ends the waiting. */
export interface ResponseWaiter {
  /** The whole response arrived in one response frame: head, body and the end. */
  whole(head: StreamResponseFrame, body: Buffer): void;
  /**
   * The response streams (a head without its end, or a version-2 agent's separate frames): read it
   * from `stream`, whose `response` is already set (unless the peer ended or sent data without one).
   */
  streamed(stream: TunnelStream): void;
  /** The peer reset the stream, or the connection was lost, before any response. */
  failed(err: Error): void;
}

/** What a PendingResponse needs from its mux. */
export interface PendingHost {
  /** The caller went away before any response: reset the stream to the peer and forget it. */
  cancelPending(pending: PendingResponse): void;
}

/**
 * Opener side of an exchange whose request half carries nothing (`has_body: false`): a plain
 * record until the response needs a stream. The common answer to a bodiless request, one response
 * frame with head, body and end, goes to `waiter.whole` with no Node stream, listener or promise on
 * the way; anything else makes the mux create the TunnelStream then and hand it to
 * `waiter.streamed`, exactly as if the exchange had started as one.
 *
 *   pending ──response frame with end──▶ whole          pending ──reset / connection lost──▶ failed
 *      └──any other frame──▶ TunnelStream ──▶ streamed  pending ──cancel()──▶ stream.reset to the peer
 */
export class PendingResponse {
  /** The stream the exchange became, once its response needed one. */
  stream: TunnelStream | undefined;

  constructor(
    readonly id: number,
    readonly waiter: ResponseWaiter,
    private readonly host: PendingHost,
  ) {}

  /** The caller is gone (its client disconnected): the peer is told, whatever state the exchange is in. */
  cancel(): void {
    if (this.stream !== undefined) this.stream.destroy();
    else this.host.cancelPending(this);
  }
}
