import { CredentialErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import { COMBINED_RESPONSE_VERSION } from '../tunnel/protocol-constants.js';
import type { CredentialResolvedFrame, StreamOpenFrame } from '../tunnel/protocol-stream.js';
import type { StreamEndpoint } from '../tunnel/stream-endpoint.js';
import { StreamMux, type StreamFrame } from '../tunnel/stream-mux.js';
import type { AnswerableExchange } from '../tunnel/bodiless-exchange.js';
import type { WsTransport } from '../tunnel/ws-transport.js';
import { respondError } from './agent-proxy.js';
import { CredentialRequests, type ResolvedCredential } from './credential-cache.js';

/** What serves one stream (AgentProxy). */
export interface StreamHandler {
  /** Serves the exchange; never throws, every outcome ends or resets it. */
  handle(exchange: AnswerableExchange, open: StreamOpenFrame): void;
  close(): Promise<void>;
}

export interface AgentStreamsOptions {
  handler: StreamHandler;
  logger: Logger;
  /** How long drain() waits for open streams when no deadline is given; default 10 s. */
  drainTimeoutMs?: number;
}

/**
 * The agent's StreamEndpoint (src/tunnel/stream-endpoint.ts): one StreamMux per connection, the
 * handler that serves each `stream.open`, and the credential.resolve requests of external services.
 *
 *   attach(transport) ──▶ stream.open → handler ──▶ … ──▶ detach(reason): every stream reset locally
 *   drain(): refuse new streams (503), wait for open ones (bounded), then the tunnel closes.
 */
export class AgentStreams implements StreamEndpoint {
  private mux: StreamMux | undefined;
  private transport: WsTransport | undefined;
  private draining = false;
  private readonly requests = new CredentialRequests();

  constructor(private readonly options: AgentStreamsOptions) {}

  attach(transport: WsTransport): void {
    this.detach('replaced by a new connection');
    this.transport = transport;
    this.mux = new StreamMux({ transport });
  }

  onWelcome(protocolVersion: number): void {
    if (this.mux !== undefined) this.mux.combinedResponses = protocolVersion >= COMBINED_RESPONSE_VERSION;
  }

  detach(reason: string): void {
    this.mux?.closeAll(reason);
    this.mux = undefined;
    this.transport = undefined;
    this.requests.failAll(reason);
  }

  onBinary(data: Buffer): string | undefined {
    return this.mux?.handleData(data);
  }

  onOpen(frame: StreamOpenFrame): void {
    // has_body: false — the gateway sends neither data nor stream.end for the request half (an
    // upgrade's request half carries the upgraded bytes whatever has_body says). Such a request
    // to the service (not logs) gets no stream unless its answer streams (bodiless-exchange.ts).
    const bodiless = frame.has_body === false && frame.upgrade !== true;
    const stream = bodiless && frame.purpose !== 'logs' ? this.mux?.acceptBodiless(frame.stream_id) : this.mux?.accept(frame.stream_id, bodiless);
    if (stream === undefined) return;
    if (this.draining) {
      stream.resume();
      respondError(stream, 503, 'the agent is shutting down', { 'retry-after': '1' });
      return;
    }
    this.options.handler.handle(stream, frame);
  }

  onStreamFrame(frame: StreamFrame): void {
    this.mux?.handleFrame(frame);
  }

  onCredential(frame: CredentialResolvedFrame): void {
    if (frame.value !== undefined) this.requests.answer(frame.request_id, { value: frame.value, ttlMs: frame.ttl_ms });
    else this.requests.answer(frame.request_id, frame.error ?? { code: CredentialErrorCodes.UNAVAILABLE, message: 'the answer carried no value' });
  }

  /** Streams open on the current connection. */
  get activeStreams(): number {
    return this.mux?.size ?? 0;
  }

  /**
   * Stops taking new streams (answered 503) and resolves when the open ones finished; when
   * `deadline` aborts first (default: drainTimeoutMs), the rest are reset. Idempotent.
   */
  async drain(deadline: AbortSignal = AbortSignal.timeout(this.options.drainTimeoutMs ?? 10_000)): Promise<void> {
    this.draining = true;
    const mux = this.mux;
    if (mux === undefined || (await mux.whenIdle(deadline))) return;
    this.options.logger.warn({ streams: mux.size }, 'proxy streams still open after the drain timeout: resetting them');
    mux.resetAll('the agent is shutting down');
  }

  async close(): Promise<void> {
    this.detach('agent shutting down');
    await this.options.handler.close();
  }

  /** Asks the gateway for a credential over the current connection (the CredentialCache's fetch). */
  requestCredential(serviceId: string, credentialId: string): Promise<ResolvedCredential> {
    return this.requests.request((requestId) => {
      const transport = this.transport;
      if (transport === undefined || !transport.open) return false;
      transport.sendText(JSON.stringify({ type: 'credential.resolve', request_id: requestId, service_id: serviceId, credential_id: credentialId }));
      return true;
    }, credentialId);
  }
}
