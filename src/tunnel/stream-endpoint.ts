import type { CredentialResolvedFrame, StreamOpenFrame } from './protocol-stream.js';
import type { StreamFrame } from './stream-mux.js';
import type { WsTransport } from './ws-transport.js';

/**
 * What the tunnel client hands proxied streams to. The tunnel owns the transport (the WebSocket,
 * its frames, the stream multiplexer); the agent's proxy implements this endpoint, and the
 * composition root (agent.ts) passes it in. The tunnel never knows what serves a stream.
 *
 *   attach(transport) ──▶ onWelcome(version) ──▶ onOpen / onStreamFrame / onBinary / onCredential … ──▶ detach(reason)
 *        (one attach per connection; a reconnect attaches again)
 *   drain(deadline) ──▶ close()      (shutdown: no new streams, wait, then release everything)
 */
export interface StreamEndpoint {
  /** A connection is open and welcomed or about to be: streams start from scratch on it. */
  attach(transport: WsTransport): void;
  /** The gateway welcomed the connection with this protocol version (what streams may use on it). */
  onWelcome(protocolVersion: number): void;
  /** The connection is gone: every stream and pending request on it fails. Idempotent. */
  detach(reason: string): void;
  /** A binary (stream data) frame; returns a problem to report with an `error` frame, if any. */
  onBinary(data: Buffer): string | undefined;
  onOpen(frame: StreamOpenFrame): void;
  onStreamFrame(frame: StreamFrame): void;
  onCredential(frame: CredentialResolvedFrame): void;
  /** Stops taking new streams and resolves when the open ones finished or `deadline` aborted. */
  drain(deadline?: AbortSignal): Promise<void>;
  /** Releases everything (connection pools, timers). */
  close(): Promise<void>;
}
