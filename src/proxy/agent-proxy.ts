import { Transform, type TransformCallback } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { AgentCore } from '../agent-core.js';
import type { ReadyEndpoint } from '../domain/status-types.js';
import { AgentError, ErrorCodes, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { DesiredService } from '../service-definition/types.js';
import { type StreamOpenFrame } from '../tunnel/protocol-stream.js';
import type { TunnelStream } from '../tunnel/tunnel-stream.js';
import type { CredentialCache } from './credential-cache.js';
import { headerValue, relayableHeaders, stripHopByHop, type WireHeaders } from '../tunnel/http-headers.js';
import { ReplicaPicker } from './replica-picker.js';
import { relayExchange } from './upstream-exchange.js';
import { assertAllowedAddress, literalAddress } from './upstream-dispatchers.js';
import { serveLogs } from './log-stream.js';

export interface ProxyLimits {
  maxBodyBytes: number;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  allowPrivateUpstreams: boolean;
}

/** Told about every finished proxied request (structurally the admin ProxyMetrics). */
export interface RequestObserver {
  observeRequest(serviceSlug: string, status: number, seconds: number): void;
}

export interface AgentProxyOptions {
  /** Ready replicas and the desired definition of each service (the reconciler). */
  core: Pick<AgentCore, 'readyEndpoints' | 'desiredService' | 'replicaLogs'>;
  credentials: CredentialCache;
  /** Connection pools: `replica` for the agent's Docker network, `external` for external_url (upstream-dispatchers.ts). */
  dispatchers: { replica: Dispatcher; external: Dispatcher };
  limits: ProxyLimits;
  logger: Logger;
  metrics?: RequestObserver;
}

/** Seconds a client should wait before retrying when no replica is ready. */
const RETRY_AFTER_S = 5;

/**
 * The agent end of the proxy: turns one tunnel stream into one upstream HTTP request and streams
 * the response back. Deployed services go to a ready replica (least outstanding requests);
 * external services go to `external_url` with the resolved credential. Bodies stream in both
 * directions with backpressure (nothing is buffered whole); errors before the response head become
 * JSON `{"error_message"}` answers (502/503/504/413), errors after it reset the stream.
 */
export class AgentProxy {
  private readonly local: Dispatcher;
  private readonly external: Dispatcher;
  private readonly picker = new ReplicaPicker();

  constructor(private readonly options: AgentProxyOptions) {
    this.local = options.dispatchers.replica;
    this.external = options.dispatchers.external;
  }

  /** Serves one stream. Never throws; every outcome ends or resets the stream. */
  handle(stream: TunnelStream, open: StreamOpenFrame): void {
    stream.on('error', () => undefined);
    const svc = open.purpose === 'logs' ? undefined : this.options.core.desiredService(open.service_id);
    const metrics = this.options.metrics;
    // A logs stream is no request to the service: not counted in its request metrics.
    if (metrics !== undefined && open.purpose !== 'logs') {
      const started = performance.now();
      const slug = svc?.definition.service_slug ?? open.service_id;
      stream.once('close', () => metrics.observeRequest(slug, stream.sentStatus, (performance.now() - started) / 1000));
    }
    this.serve(stream, open, svc).catch((err: unknown) => {
      this.options.logger.error({ err, streamId: open.stream_id }, 'proxy stream failed unexpectedly');
      stream.destroy(err as Error);
    });
  }

  async close(): Promise<void> {
    await Promise.all([this.local.close(), this.external.close()]);
  }

  private async serve(stream: TunnelStream, open: StreamOpenFrame, svc: DesiredService | undefined): Promise<void> {
    if (open.purpose === 'logs') return serveLogs(stream, open, this.options.core, respondError);
    if (svc === undefined) return respondError(stream, 404, `service ${open.service_id} is not held by this agent`);
    const declared = headerValue(open.headers, 'content-length');
    if (declared !== undefined && (!/^\d+$/.test(declared) || Number(declared) > this.options.limits.maxBodyBytes)) {
      return /^\d+$/.test(declared)
        ? respondError(stream, 413, `request body of ${declared} bytes exceeds the agent's proxy.max_body of ${this.options.limits.maxBodyBytes} bytes`)
        : respondError(stream, 400, `content-length "${declared}" is not a number`);
    }
    // An upgrade sends no body: its request half carries the raw bytes once the upstream said 101.
    const hasBody = open.upgrade === true || open.has_body === false ? false : declared !== undefined ? Number(declared) > 0 : open.has_body === true;
    if (!hasBody && open.upgrade !== true && !stream.readableEnded) stream.resume();
    if (svc.definition.service_type === 'external') return this.serveExternal(stream, open, svc, hasBody);
    return this.serveReplica(stream, open, svc, hasBody);
  }

  private async serveReplica(stream: TunnelStream, open: StreamOpenFrame, svc: DesiredService, hasBody: boolean): Promise<void> {
    // Read only (undici sends them): the frame's own map when the gateway sent it clean.
    const headers = relayableHeaders(open.headers, ['host']);
    let refused: ReadyEndpoint | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      const ready = this.options.core.readyEndpoints(svc.id);
      const skip = refused?.containerId;
      const ep = this.picker.pick(skip === undefined ? ready : ready.filter((e) => e.containerId !== skip));
      if (ep === undefined && refused !== undefined) return respondError(stream, 502, `${replicaName(refused, svc)} refused the connection (ECONNREFUSED) and no other replica is ready`);
      if (ep === undefined) {
        return respondError(stream, 503, `service ${svc.definition.service_slug} has no ready replica on this agent`, { 'retry-after': String(RETRY_AFTER_S) });
      }
      const done = this.picker.begin(ep);
      const retryable = !hasBody && attempt === 0;
      const outcome = await this.forward(stream, open, originOf(ep), open.path, headers, hasBody, this.local, replicaName(ep, svc), retryable);
      done(outcome === 'connect-refused' ? undefined : stream);
      // Nothing was sent yet and the replica refused the connection (e.g. stopped a moment ago):
      // another ready replica may take it, once. Requests with a body are not retried.
      if (outcome !== 'connect-refused') return;
      refused = ep;
    }
  }

  private async serveExternal(stream: TunnelStream, open: StreamOpenFrame, svc: DesiredService, hasBody: boolean): Promise<void> {
    const { definition } = svc;
    let base: URL;
    try {
      base = new URL(definition.external_url ?? '');
    } catch {
      return respondError(stream, 502, `service ${definition.service_slug} has no valid external_url`);
    }
    if (base.protocol !== 'https:') return respondError(stream, 502, `external_url of ${definition.service_slug} must use https`);
    const literal = literalAddress(base.hostname);
    try {
      if (literal !== undefined) assertAllowedAddress(literal, literal, this.options.limits.allowPrivateUpstreams);
    } catch (err) {
      return respondError(stream, 502, errorMessage(err));
    }
    const headers = stripHopByHop(open.headers, ['host', 'authorization', 'cookie', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto']);
    const credentialId = definition.external_auth_credential_id;
    if (credentialId) {
      try {
        headers['authorization'] = await this.options.credentials.get(svc.id, credentialId);
      } catch (err) {
        return respondError(stream, 502, `credential ${credentialId} of ${definition.service_slug} could not be resolved: ${errorMessage(err)}`);
      }
    }
    await this.forward(stream, open, base.origin, joinUrl(base, open.path).slice(base.origin.length), headers, hasBody, this.external, `external service ${definition.service_slug}`);
  }

  /**
   * One upstream exchange. Resolves when the response is relayed or answered with an error;
   * 'connect-refused' (nothing answered yet) only when `retryable` and the connection was refused.
   * `path` (with its query) goes to the upstream byte for byte; `what` names the upstream in errors.
   */
  private async forward(stream: TunnelStream, open: StreamOpenFrame, origin: string, path: string, headers: WireHeaders, hasBody: boolean, dispatcher: Dispatcher, what: string, retryable = false): Promise<'done' | 'connect-refused'> {
    const { limits } = this.options;
    let tooLarge = false;
    const body = hasBody
      ? stream.pipe(
          new LimitStream(limits.maxBodyBytes, () => {
            tooLarge = true;
          }),
        )
      : null;
    const result = await relayExchange(dispatcher, stream, {
      origin,
      path,
      method: open.method,
      headers,
      body,
      headersTimeoutMs: limits.headersTimeoutMs,
      idleTimeoutMs: limits.idleTimeoutMs,
      ...(open.upgrade === true ? { upgrade: true } : {}),
    });
    if (result.relayed || stream.destroyed) return 'done';
    if (tooLarge) {
      respondError(stream, 413, `request body exceeds the agent's proxy.max_body of ${limits.maxBodyBytes} bytes`);
      return 'done';
    }
    const err = result.error;
    if (err.code === ErrorCodes.UPSTREAM_REFUSED && retryable) return 'connect-refused';
    const timeout = err.code === ErrorCodes.UPSTREAM_TIMEOUT;
    const refused = err.code === ErrorCodes.UPSTREAM_ADDRESS_REFUSED;
    this.options.logger.warn({ err: refused ? undefined : err, streamId: open.stream_id, upstream: what }, refused ? err.message : 'upstream request failed');
    respondError(stream, timeout ? 504 : 502, timeout ? `${what} did not answer within ${limits.headersTimeoutMs} ms` : `${what} failed: ${err.message}`);
    return 'done';
  }
}

/** Answers the stream with a JSON error (Cyberun's `{"error_message"}`) and ends it. */
export function respondError(stream: TunnelStream, status: number, message: string, extra: Record<string, string> = {}): void {
  if (stream.destroyed) return;
  const body = Buffer.from(JSON.stringify({ error_message: message }));
  stream.sendWholeResponse(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.byteLength), 'cache-control': 'no-store', ...extra }, body);
}

function originOf(ep: ReadyEndpoint): string {
  return ep.host.includes(':') ? `http://[${ep.host}]:${ep.port}` : `http://${ep.host}:${ep.port}`;
}

function replicaName(ep: ReadyEndpoint, svc: DesiredService): string {
  return `replica ${ep.replicaIndex} of ${svc.definition.service_slug}`;
}

/** external_url + request path: the base path prefixes the request path; queries are joined. */
export function joinUrl(base: URL, path: string): string {
  const q = path.indexOf('?');
  const reqPath = q === -1 ? path : path.slice(0, q);
  const reqQuery = q === -1 ? '' : path.slice(q + 1);
  const prefix = base.pathname.endsWith('/') ? base.pathname.slice(0, -1) : base.pathname;
  const query = [base.search.slice(1), reqQuery].filter((s) => s !== '').join('&');
  return `${base.origin}${prefix}${reqPath}${query === '' ? '' : `?${query}`}`;
}

/** Passes bytes through until `limit`, then fails (the request is aborted and answered 413). */
class LimitStream extends Transform {
  private seen = 0;
  constructor(
    private readonly limit: number,
    private readonly onExceeded: () => void,
  ) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.byteLength;
    if (this.seen > this.limit) {
      this.onExceeded();
      cb(new AgentError(ErrorCodes.BODY_TOO_LARGE, `request body exceeds ${this.limit} bytes`));
      return;
    }
    cb(null, chunk);
  }
}
