import { Transform, type TransformCallback } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { AgentCore } from '../agent-core.js';
import type { ReadyEndpoint } from '../domain/status-types.js';
import { AgentError, ErrorCodes, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { DesiredService } from '../service-definition/types.js';
import { type StreamOpenFrame } from '../tunnel/protocol-stream.js';
import type { AnswerableExchange } from '../tunnel/bodiless-exchange.js';
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
  handle(stream: AnswerableExchange, open: StreamOpenFrame): void {
    stream.on('error', ignore);
    const svc = open.purpose === 'logs' ? undefined : this.options.core.desiredService(open.service_id);
    const metrics = this.options.metrics;
    // A logs stream is no request to the service: not counted in its request metrics.
    if (metrics !== undefined && open.purpose !== 'logs') {
      const started = performance.now();
      const slug = svc?.definition.service_slug ?? open.service_id;
      // `on`: 'close' comes once, and once() would wrap and then remove the listener per request.
      stream.on('close', () => metrics.observeRequest(slug, stream.sentStatus, (performance.now() - started) / 1000));
    }
    try {
      this.serve(stream, open, svc);
    } catch (err) {
      this.failed(stream, open, err);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.local.close(), this.external.close()]);
  }

  private failed(stream: AnswerableExchange, open: StreamOpenFrame, err: unknown): void {
    this.options.logger.error({ err, streamId: open.stream_id }, 'proxy stream failed unexpectedly');
    stream.destroy(err as Error);
  }

  /**
   * Synchronous up to the upstream dispatch for a replica (this runs for every proxied request: no
   * promise or async frame on its way); logs and external services, which wait on the way, run as
   * promises of their own.
   */
  private serve(stream: AnswerableExchange, open: StreamOpenFrame, svc: DesiredService | undefined): void {
    if (open.purpose === 'logs') {
      serveLogs(stream.toStream(), open, this.options.core, respondError).catch((err: unknown) => this.failed(stream, open, err));
      return;
    }
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
    if (svc.definition.service_type === 'external') {
      this.serveExternal(stream, open, svc, hasBody).catch((err: unknown) => this.failed(stream, open, err));
      return;
    }
    this.serveReplica(stream, open, svc, hasBody, undefined);
  }

  /**
   * To the least busy ready replica. A replica that refused the connection before anything was
   * sent (e.g. stopped a moment ago) is `refused`: the request goes to another ready one, once.
   * Requests with a body are not retried.
   */
  private serveReplica(stream: AnswerableExchange, open: StreamOpenFrame, svc: DesiredService, hasBody: boolean, refused: ReadyEndpoint | undefined): void {
    const ready = this.options.core.readyEndpoints(svc.id);
    const ep = this.picker.pick(refused === undefined ? ready : ready.filter((e) => e.containerId !== refused.containerId));
    if (ep === undefined && refused !== undefined) return respondError(stream, 502, `${replicaName(refused, svc)} refused the connection (ECONNREFUSED) and no other replica is ready`);
    if (ep === undefined) {
      return respondError(stream, 503, `service ${svc.definition.service_slug} has no ready replica on this agent`, { 'retry-after': String(RETRY_AFTER_S) });
    }
    const done = this.picker.begin(ep);
    // Read only (undici sends them): the frame's own map when the gateway sent it clean.
    const headers = relayableHeaders(open.headers, DROP_HOST);
    const retryable = !hasBody && refused === undefined;
    this.forward(stream, open, originOf(ep), open.path, headers, hasBody, this.local, svc, ep, retryable, (outcome) => {
      done(outcome === 'connect-refused' ? undefined : stream);
      if (outcome === 'connect-refused') this.serveReplica(stream, open, svc, hasBody, ep);
    });
  }

  private async serveExternal(stream: AnswerableExchange, open: StreamOpenFrame, svc: DesiredService, hasBody: boolean): Promise<void> {
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
    this.forward(stream, open, base.origin, joinUrl(base, open.path).slice(base.origin.length), headers, hasBody, this.external, svc, undefined, false, ignore);
  }

  /**
   * One upstream exchange; `finished` runs once it is relayed (a streamed answer once its head is in
   * the stream: relayExchange) or answered with an error, with 'connect-refused' (nothing answered
   * yet) only when `retryable` and the connection was refused. The replica count it ends is held
   * until the stream closes (ReplicaPicker.begin).
   * `path` (with its query) goes to the upstream byte for byte; errors name `replica`, or else the
   * service's external_url.
   */
  private forward(
    stream: AnswerableExchange,
    open: StreamOpenFrame,
    origin: string,
    path: string,
    headers: WireHeaders,
    hasBody: boolean,
    dispatcher: Dispatcher,
    svc: DesiredService,
    replica: ReadyEndpoint | undefined,
    retryable: boolean,
    finished: (outcome: 'done' | 'connect-refused') => void,
  ): void {
    const { limits } = this.options;
    let tooLarge = false;
    const body = hasBody
      ? stream.toStream().pipe(
          new LimitStream(limits.maxBodyBytes, () => {
            tooLarge = true;
          }),
        )
      : null;
    const request: Dispatcher.DispatchOptions = { origin, path, method: open.method, headers, body, headersTimeout: limits.headersTimeoutMs, bodyTimeout: limits.idleTimeoutMs };
    if (open.upgrade === true) request.upgrade = 'websocket';
    relayExchange(dispatcher, stream, request, (result) => {
      if (result.relayed || stream.destroyed) return finished('done');
      if (tooLarge) {
        respondError(stream, 413, `request body exceeds the agent's proxy.max_body of ${limits.maxBodyBytes} bytes`);
        return finished('done');
      }
      const err = result.error;
      if (err.code === ErrorCodes.UPSTREAM_REFUSED && retryable) return finished('connect-refused');
      const what = replica === undefined ? `external service ${svc.definition.service_slug}` : replicaName(replica, svc);
      const timeout = err.code === ErrorCodes.UPSTREAM_TIMEOUT;
      const refused = err.code === ErrorCodes.UPSTREAM_ADDRESS_REFUSED;
      this.options.logger.warn({ err: refused ? undefined : err, streamId: open.stream_id, upstream: what }, refused ? err.message : 'upstream request failed');
      respondError(stream, timeout ? 504 : 502, timeout ? `${what} did not answer within ${limits.headersTimeoutMs} ms` : `${what} failed: ${err.message}`);
      finished('done');
    });
  }
}

const ignore = (): void => undefined;

/** What the agent drops from a request to a replica: undici sends the replica's own Host. */
const DROP_HOST: readonly string[] = ['host'];

/** Answers the stream with a JSON error (Cyberun's `{"error_message"}`) and ends it. */
export function respondError(stream: AnswerableExchange, status: number, message: string, extra: Record<string, string> = {}): void {
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
