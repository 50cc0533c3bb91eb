import type { ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { headerValue, relayableHeaders, stripHopByHop } from '../tunnel/http-headers.js';
import { HTTP_METHODS, type StreamResponseFrame } from '../tunnel/protocol-stream.js';
import type { PendingResponse, ResponseWaiter } from '../tunnel/pending-response.js';
import type { TunnelStream } from '../tunnel/tunnel-stream.js';
import type { StreamRequest } from './agent-hub.js';
import { edgeFacts, forwardedHeaders, withEdgeHeaders } from './forwarded-headers.js';
import type { StallGuard } from './http-edge.js';
import { STREAMED, fail, ok, sendJson, type HttpResult } from './http-io.js';
import { parseInvokeRequest } from './invoke-request.js';
import { chooseProxyTarget } from './proxy-target.js';
import type { Route, RouteContext } from './router.js';
import type { ServiceStore } from './service-store.js';
import { statusOf, type StatusSource } from './service-view.js';

/** What the proxy routes need from the agent hub. */
export interface ProxyHub extends StatusSource {
  openStream(agentId: string, request: StreamRequest): TunnelStream | undefined;
  /** A request without a body, answered through `waiter` (no stream unless the answer streams). */
  request(agentId: string, request: StreamRequest & { has_body: false }, waiter: ResponseWaiter): PendingResponse | undefined;
  openStreams(agentId: string): number;
}

export interface ProxyRoutesDeps {
  store: ServiceStore;
  hub: ProxyHub;
  logger: Logger;
  /** Largest response body invoke buffers into its JSON answer; default 10 MiB. */
  invokeMaxResponseBytes?: number;
  /** Cuts off a streamed response whose client stopped reading (http-edge.ts sendStallGuard). */
  guardStall: StallGuard;
}

/** What relaying a streamed answer needs besides the exchange; one per set of routes. */
type RelaySettings = Pick<ProxyRoutesDeps, 'logger' | 'guardStall'>;

/** Where the transparent proxy lives; `/{slug}/…` follows. */
export const RUNTIME = '/api/v1/r/containers';

/**
 * The runtime data path of the local gateway (docs/gateway.md):
 * - `ANY /r/containers/{slug}/*`: the path after the slug and the query go to the service
 *   unchanged; the response streams back unchanged (status, headers, body chunk by chunk).
 * - `POST /r/invoke/{slug}`: a JSON-described request, answered as JSON with a base64 body.
 * Both relay through a tunnel stream to an agent running a ready replica (proxy-target.ts).
 */
export function proxyRoutes(deps: ProxyRoutesDeps): Route[] {
  const maxInvoke = deps.invokeMaxResponseBytes ?? 10 * 1024 * 1024;
  const relay: RelaySettings = { logger: deps.logger, guardStall: deps.guardStall };

  const transparent = (ctx: RouteContext): HttpResult | Promise<HttpResult> => {
    const { req } = ctx;
    const method = (req.method ?? 'GET').toUpperCase();
    if (!(HTTP_METHODS as readonly string[]).includes(method)) {
      return { ...fail(405, `${method} cannot be proxied (allowed: ${HTTP_METHODS.join(', ')})`), headers: { allow: HTTP_METHODS.join(', ') } };
    }
    // The route's `*` is the path after the slug as sent (only `:` params are decoded).
    const path = `/${ctx.params['*'] ?? ''}${ctx.url.search}`;
    const headers = forwardedHeaders(req);
    const length = headerValue(headers, 'content-length');
    const hasBody = length !== undefined ? length !== '0' : req.headers['transfer-encoding'] !== undefined;
    const slug = ctx.params.slug ?? '';
    const target = proxyTarget(deps, slug);
    if ('result' in target) return target.result;
    const service_id = target.serviceId;
    if (!hasBody) return relayBodiless(ctx, slug, target.agentId, { method: method as StreamRequest['method'], path, headers, service_id, has_body: false });
    const stream = deps.hub.openStream(target.agentId, { method: method as StreamRequest['method'], path, headers, service_id, has_body: true });
    if (stream === undefined) return agentGone(slug);
    stream.on('error', ignore);
    return relayUpload(ctx, slug, stream);
  };

  /**
   * A request without a body: no stream on the gateway unless the answer streams. The common
   * answer, one response frame with head, body and end, is written in one go when it arrives.
   */
  const relayBodiless = (ctx: RouteContext, slug: string, agentId: string, request: StreamRequest & { has_body: false }): HttpResult => {
    const { req, res } = ctx;
    const pending = deps.hub.request(agentId, request, new BodilessAnswer(res, slug, relay));
    if (pending === undefined) return agentGone(slug);
    // `on`: 'close' comes once, and once() would wrap and then remove the listener per request.
    res.on('close', () => {
      if (!res.writableFinished) pending.cancel();
    });
    req.resume();
    return STREAMED;
  };

  /** A request with a body: it streams to the agent while the answer is awaited. */
  const relayUpload = async (ctx: RouteContext, slug: string, stream: TunnelStream): Promise<HttpResult> => {
    const { req, res } = ctx;
    // A response that arrives whole (one response frame) is answered below in one write: it is
    // kept for takeWholeBody rather than read through the stream.
    stream.takesWholeResponses = true;
    res.once('close', () => {
      if (!res.writableFinished) stream.destroy();
    });
    req.pipe(stream);
    const head = await responseHead(stream);
    if ('error' in head) return agentFailed(head.error);
    // Response complete: an upload the service did not wait for is cut off.
    const stopUpload = (): void => {
      if (!stream.writableFinished) {
        req.unpipe(stream);
        stream.destroy();
      }
    };
    relayStreamed(res, slug, stream, head, stopUpload, relay);
    return STREAMED;
  };

  const invoke = async (ctx: RouteContext): Promise<HttpResult> => {
    const body = await ctx.readBody();
    if (!body.ok) return body.result;
    const parsed = parseInvokeRequest(body.value);
    if (!parsed.ok) return fail(400, parsed.message);
    const { method, path, body: payload } = parsed.value;
    const headers = withEdgeHeaders(parsed.value.headers, edgeFacts(ctx.req), ['content-length']);
    if (payload !== undefined) headers['content-length'] = String(payload.byteLength);
    const opened = openProxyStream(deps, ctx.params.slug ?? '', { method, path, headers, has_body: payload !== undefined && payload.byteLength > 0 });
    if ('result' in opened) return opened.result;
    const { stream } = opened;
    ctx.res.once('close', () => stream.destroy());
    if (payload !== undefined && payload.byteLength > 0) stream.end(payload);
    const head = await responseHead(stream);
    if ('error' in head) return agentFailed(head.error);
    const collected = await collect(stream, maxInvoke);
    if ('error' in collected) return fail(502, collected.error);
    return ok({ status_code: head.status, headers: stripHopByHop(head.headers, ['content-length']), body_base64: collected.body.toString('base64') });
  };

  return [
    { method: '*', pattern: `${RUNTIME}/:slug/*`, handler: transparent },
    { method: 'POST', pattern: '/api/v1/r/invoke/:slug', handler: invoke },
  ];
}

/**
 * Answers the client from a stream whose response head arrived: in one write when the whole
 * response came with it, else head first and the body piped as it comes. `stopUpload` runs once
 * the response is complete.
 */
function relayStreamed(res: ServerResponse, slug: string, stream: TunnelStream, head: StreamResponseFrame, stopUpload: (() => void) | undefined, relay: RelaySettings): void {
  const whole = stream.takeWholeBody();
  if (whole !== undefined) {
    stopUpload?.();
    res.writeHead(head.status, relayableHeaders(head.headers));
    res.end(whole);
    return;
  }
  res.writeHead(head.status, relayableHeaders(head.headers));
  // The head, and whatever body already arrived with it, leave in one write at the end of this
  // turn; a stream whose body comes later (SSE) still gets its head at once.
  res.cork();
  setImmediate(() => {
    if (!res.headersSent) res.flushHeaders();
    res.uncork();
  });
  stream.on('error', (err) => {
    // The head is out (or corked): the client can only see the connection cut, so say why here.
    relay.logger.warn({ slug, status: head.status, problem: err.message.slice(0, 300) }, 'proxied response cut off after its head');
    res.destroy();
  });
  if (stopUpload !== undefined) stream.once('end', stopUpload);
  relay.guardStall(stream, res, { slug, relay: 'response', remote: res.socket?.remoteAddress });
  stream.pipe(res);
}

/** Answers the client of one bodiless request from what its PendingResponse is told (one object per request, no closures). */
class BodilessAnswer implements ResponseWaiter {
  constructor(
    private readonly res: ServerResponse,
    private readonly slug: string,
    private readonly relay: RelaySettings,
  ) {}

  whole(head: StreamResponseFrame, body: Buffer): void {
    // The head was parsed for this exchange alone and writeHead only reads it: no copy when the
    // agent sent it clean (it strips hop-by-hop fields itself; they are dropped here if not).
    this.res.writeHead(head.status, relayableHeaders(head.headers));
    this.res.end(body);
  }

  streamed(stream: TunnelStream): void {
    stream.on('error', ignore);
    void responseHead(stream).then((head) => {
      if ('error' in head) sendJson(this.res, agentFailed(head.error));
      else relayStreamed(this.res, this.slug, stream, head, undefined, this.relay);
    });
  }

  failed(err: Error): void {
    sendJson(this.res, agentFailed(err.message));
  }
}

/**
 * The agent a request for `slug` goes to, with the service's id, or the error answer when there is
 * none: 404 unknown slug, 409 not deployed, 503 nothing ready.
 */
export function proxyTarget(deps: Pick<ProxyRoutesDeps, 'store' | 'hub'>, slug: string): { serviceId: string; agentId: string } | { result: HttpResult } {
  const service = deps.store.getBySlug(slug);
  if (service === undefined) return { result: fail(404, `no service with service_slug "${slug}"`) };
  const reports = deps.hub.reportsFor(service.id);
  const { status, reason } = statusOf(service, deps.hub, reports);
  const target = chooseProxyTarget({
    service,
    status,
    reason,
    placement: deps.hub.placementOf(service.id),
    reports,
    load: (agentId) => deps.hub.openStreams(agentId),
  });
  if (!target.ok) {
    const result = fail(target.status, target.message);
    return { result: target.retryAfterS === undefined ? result : { ...result, headers: { 'retry-after': String(target.retryAfterS) } } };
  }
  return { serviceId: service.id, agentId: target.agentId };
}

/**
 * Opens a tunnel stream to an agent serving `slug` (the stream.open is sent at once), or the
 * error answer when there is none (proxyTarget).
 */
export function openProxyStream(deps: Pick<ProxyRoutesDeps, 'store' | 'hub'>, slug: string, request: Omit<StreamRequest, 'service_id'>): { stream: TunnelStream } | { result: HttpResult } {
  const target = proxyTarget(deps, slug);
  if ('result' in target) return target;
  const stream = deps.hub.openStream(target.agentId, { ...request, service_id: target.serviceId });
  if (stream === undefined) return { result: agentGone(slug) };
  stream.on('error', ignore);
  return { stream };
}

/** The answer when the agent chosen for `slug` disconnected a moment ago. */
function agentGone(slug: string): HttpResult {
  return { ...fail(503, `the agent running "${slug}" just disconnected; retry`), headers: { 'retry-after': '1' } };
}

/** The answer when the agent could not answer (the stream failed before a response head). */
function agentFailed(problem: string): HttpResult {
  return fail(502, `the agent could not answer: ${problem}`);
}

const ignore = (): void => undefined;

/**
 * `/api/v1/r/containers/{slug}/rest?query` → the slug (percent-decoded; undefined when it does
 * not decode) and the path that goes to the service unchanged (`/rest?query`, at least `/`).
 */
export function runtimeTarget(url: URL): { slug: string | undefined; path: string } {
  const rawSlug = url.pathname.split('/')[5] ?? '';
  let slug: string | undefined;
  try {
    slug = decodeURIComponent(rawSlug);
  } catch {
    slug = undefined;
  }
  return { slug, path: `${url.pathname.slice(`${RUNTIME}/${rawSlug}`.length) || '/'}${url.search}` };
}

/** Waits for the agent's stream.response (or the stream's failure). */
export function responseHead(stream: TunnelStream): Promise<StreamResponseFrame | { error: string }> {
  if (stream.response !== undefined) return Promise.resolve(stream.response);
  return new Promise((resolve) => {
    const onResponse = (frame: StreamResponseFrame): void => done(frame);
    const onError = (err: Error): void => done({ error: err.message });
    const onClose = (): void => done({ error: 'the stream closed before a response' });
    const done = (v: StreamResponseFrame | { error: string }): void => {
      stream.off('response', onResponse);
      stream.off('error', onError);
      stream.off('close', onClose);
      resolve(v);
    };
    stream.on('response', onResponse);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

/** Reads a whole (bounded) response body for invoke. */
async function collect(stream: TunnelStream, limit: number): Promise<{ body: Buffer } | { error: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      size += (chunk as Buffer).byteLength;
      if (size > limit) {
        stream.destroy();
        return { error: `the response body exceeds invoke's limit of ${limit} bytes: use the transparent proxy (/r/containers/{slug}/…) for large bodies` };
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    return { error: `the response failed while streaming: ${(err as Error).message}` };
  }
  return { body: Buffer.concat(chunks) };
}
