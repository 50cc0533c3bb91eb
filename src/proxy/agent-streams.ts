import type { AgentCore } from '../agent-core.js';
import type { Logger } from '../log.js';
import type { DesiredService } from '../service-definition/types.js';
import type { CredentialResolvedFrame, StreamOpenFrame } from '../tunnel/protocol-stream.js';
import { StreamMux, type StreamFrame } from '../tunnel/stream-mux.js';
import type { WsTransport } from '../tunnel/ws-transport.js';
import { AgentProxy, respondError, type ProxyLimits, type RequestObserver } from './agent-proxy.js';
import { CredentialCache, CredentialRequests } from './credential-cache.js';
import type { Resolve } from './upstream-dispatchers.js';

/** Options of the agent's proxy as the tunnel client takes them. */
export interface AgentProxyConfig extends ProxyLimits {
  /** Extra CA (PEM) for external upstreams (private PKI, tests). */
  upstreamCaPem?: string;
  /** DNS for external hosts (tests). */
  resolve?: Resolve;
  /** How long close() waits for open streams when nobody drained them before; default 10 s. */
  drainTimeoutMs?: number;
  /** Told about every finished request (the agent's Prometheus metrics). */
  metrics?: RequestObserver;
}

export const DEFAULT_PROXY_CONFIG: AgentProxyConfig = {
  maxBodyBytes: 10 * 1024 ** 3,
  headersTimeoutMs: 600_000,
  idleTimeoutMs: 900_000,
  allowPrivateUpstreams: false,
};

/**
 * The agent's stream endpoint of the tunnel: one StreamMux per connection, the proxy that serves
 * each `stream.open`, and the credential requests of external services.
 *
 *   attach(transport) ──▶ stream.open → AgentProxy ──▶ … ──▶ detach(reason): every stream reset locally
 *   drain(): refuse new streams (503), wait for open ones (bounded), then the tunnel closes.
 */
export class AgentStreams {
  private mux: StreamMux | undefined;
  private transport: WsTransport | undefined;
  private draining = false;
  private readonly proxy: AgentProxy;
  private readonly requests = new CredentialRequests();
  private readonly credentials: CredentialCache;

  constructor(
    private readonly options: {
      core: Pick<AgentCore, 'readyEndpoints'>;
      service: (serviceId: string) => DesiredService | undefined;
      config: AgentProxyConfig;
      logger: Logger;
    },
  ) {
    this.credentials = new CredentialCache({ fetch: (serviceId, credentialId) => this.requestCredential(serviceId, credentialId) });
    this.proxy = new AgentProxy({
      core: options.core,
      service: options.service,
      credentials: this.credentials,
      limits: options.config,
      logger: options.logger,
      ...(options.config.metrics === undefined ? {} : { metrics: options.config.metrics }),
      ...(options.config.upstreamCaPem === undefined ? {} : { upstreamCaPem: options.config.upstreamCaPem }),
      ...(options.config.resolve === undefined ? {} : { resolve: options.config.resolve }),
    });
  }

  /** A new connection is open: streams start from scratch on it. */
  attach(transport: WsTransport): void {
    this.detach('replaced by a new connection');
    this.transport = transport;
    this.mux = new StreamMux({ transport });
  }

  /** The connection is gone: its streams and pending credential requests fail. Idempotent. */
  detach(reason: string): void {
    this.mux?.closeAll(reason);
    this.mux = undefined;
    this.transport = undefined;
    this.requests.failAll(reason);
  }

  /** A binary frame; returns a problem to report with an `error` frame, if any. */
  onBinary(data: Buffer): string | undefined {
    return this.mux?.handleData(data);
  }

  onOpen(frame: StreamOpenFrame): void {
    const stream = this.mux?.accept(frame.stream_id);
    if (stream === undefined) return;
    // has_body: false — the gateway sends neither data nor stream.end for the request half.
    if (frame.has_body === false) stream.onPeerEnd();
    if (this.draining) {
      stream.resume();
      respondError(stream, 503, 'the agent is shutting down', { 'retry-after': '1' });
      return;
    }
    this.proxy.handle(stream, frame);
  }

  onStreamFrame(frame: StreamFrame): void {
    this.mux?.handleFrame(frame);
  }

  onCredential(frame: CredentialResolvedFrame): void {
    if (frame.value !== undefined) this.requests.answer(frame.request_id, { value: frame.value, ttlMs: frame.ttl_ms });
    else this.requests.answer(frame.request_id, frame.error ?? { code: 'unknown', message: 'no value' });
  }

  /** Streams open on the current connection. */
  get activeStreams(): number {
    return this.mux?.size ?? 0;
  }

  /**
   * Stops taking new streams (answered 503) and resolves when the open ones finished; when
   * `deadline` aborts first (default: drainTimeoutMs), the rest are reset. Idempotent.
   */
  async drain(deadline: AbortSignal = AbortSignal.timeout(this.options.config.drainTimeoutMs ?? 10_000)): Promise<void> {
    this.draining = true;
    const mux = this.mux;
    if (mux === undefined || (await mux.whenIdle(deadline))) return;
    this.options.logger.warn({ streams: mux.size }, 'proxy streams still open after the drain timeout: resetting them');
    mux.resetAll('the agent is shutting down');
  }

  async close(): Promise<void> {
    this.detach('agent shutting down');
    await this.proxy.close();
  }

  private requestCredential(serviceId: string, credentialId: string): ReturnType<CredentialRequests['request']> {
    return this.requests.request((requestId) => {
      const transport = this.transport;
      if (transport === undefined || !transport.open) return false;
      transport.sendText(JSON.stringify({ type: 'credential.resolve', request_id: requestId, service_id: serviceId, credential_id: credentialId }));
      return true;
    }, credentialId);
  }
}
