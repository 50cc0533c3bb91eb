import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Server as NetServer, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { CredentialErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import { AGENT_CONNECT_PATH } from '../tunnel/protocol.js';
import { AgentHub } from './agent-hub.js';
import { AgentKeyring, ConnectionAuth, KeySet, authenticateAgent } from './auth.js';
import { DEFAULT_CONNECTION_LIMITS, LogThrottle, type ConnectionLimits } from './connection-limits.js';
import { CredentialsStore } from './credentials-store.js';
import { DEFAULT_HTTP_EDGE_LIMITS, answerClientError, guardBodyIdle, hasRequestBody, inFlightRequests, parseRequestTarget, sendStallGuard, type HttpEdgeLimits } from './http-edge.js';
import { STREAMED, fail, readJsonBody, rejectUpgrade, sendJson, type BodyResult, type HttpResult } from './http-io.js';
import { sharedKeyWarning } from './key-files.js';
import { AGENT_KEY_PREFIXES, API_KEY_PREFIXES, checkKey, type AgentKeyEntry } from './key-material.js';
import { proxyUpgradeHandler } from './proxy-upgrade.js';
import { matchRoute, type Route, type RouteContext } from './router.js';
import { agentRoutes } from './routes-agents.js';
import { containerRoutes } from './routes-containers.js';
import { proxyRoutes } from './routes-proxy.js';
import { logsRoutes } from './routes-logs.js';
import { ServiceStore } from './service-store.js';

/** How long idle keep-alive connections stay open once a close began (see close()). */
const IDLE_CONNECTION_GRACE_MS = 250;
const netServerClose = NetServer.prototype.close;

export interface GatewayOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 = an ephemeral port. */
  port: number;
  /** Where service definitions are persisted. */
  dataDir: string;
  /** sk-… (and dk-…) keys accepted by the REST API (key-material.ts: at least 24 characters after the prefix). */
  apiKeys: string[];
  /**
   * ak-… keys accepted on the agent endpoint, each with the one agent id it is issued for. A plain
   * string is a shared key: any agent holding it may claim any agent id (logged as a warning).
   */
  agentKeys: ReadonlyArray<string | AgentKeyEntry>;
  logger: Logger;
  /** Sent to agents in `welcome`; default 15 s. */
  heartbeatIntervalMs?: number;
  /** WebSocket ping interval; default 30 s. */
  pingIntervalMs?: number;
  /** Default 10 s. */
  helloTimeoutMs?: number;
  /** How long a disconnected agent keeps its placements; default 2 min, 0 = none. */
  disconnectGraceMs?: number;
  /** How long a connected agent has to answer a ping before a new connection with its id replaces it; default 5 s. */
  replaceTimeoutMs?: number;
  /** Per agent connection limits (connection-limits.ts); each field defaults. */
  connectionLimits?: Partial<ConnectionLimits>;
  /** HTTP server timeouts and head size (http-edge.ts); each field defaults. */
  http?: Partial<HttpEdgeLimits>;
  /** Largest accepted JSON body; default 1 MiB. */
  maxBodyBytes?: number;
  /** Clock, for tests; default Date.now. */
  now?: () => number;
}

export interface Gateway {
  /** http://host:port */
  url: string;
  /** ws://host:port/api/v1/agent/connect */
  agentUrl: string;
  port: number;
  /** Stops accepting, closes agent tunnels (1001) and HTTP connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the local gateway: the Cyberun container REST API and the agent WebSocket endpoint on one
 * port. Resolves once listening; rejects when the port is taken or the data dir is unusable.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const host = options.host ?? '127.0.0.1';
  const now = options.now ?? Date.now;
  const logger = options.logger;
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const http: HttpEdgeLimits = { ...DEFAULT_HTTP_EDGE_LIMITS, ...options.http };
  options.apiKeys.forEach((k, i) => checkKey(k, API_KEY_PREFIXES, `apiKeys[${i}]`));
  const agentEntries = options.agentKeys.map((k): AgentKeyEntry => (typeof k === 'string' ? { key: k, agentId: undefined } : k));
  agentEntries.forEach((e, i) => checkKey(e.key, AGENT_KEY_PREFIXES, `agentKeys[${i}]`));
  const agentKeyring = new AgentKeyring(agentEntries);
  if (agentKeyring.sharedCount > 0) logger.warn({ sharedKeys: agentKeyring.sharedCount }, sharedKeyWarning(agentKeyring.sharedCount));
  const store = await ServiceStore.open(options.dataDir, logger.child({ component: 'service-store' }));
  const apiKeys = new KeySet(options.apiKeys);
  const apiAuth = new ConnectionAuth(apiKeys);
  const credentials = new CredentialsStore(options.dataDir);
  const hub = new AgentHub({
    store,
    agentKeys: agentKeyring,
    logger: logger.child({ component: 'agent-hub' }),
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 15_000,
    pingIntervalMs: options.pingIntervalMs ?? 30_000,
    helloTimeoutMs: options.helloTimeoutMs ?? 10_000,
    replaceTimeoutMs: options.replaceTimeoutMs ?? 5_000,
    limits: { ...DEFAULT_CONNECTION_LIMITS, ...options.connectionLimits },
    disconnectGraceMs: options.disconnectGraceMs ?? 120_000,
    now,
    // Only the credential of an external service placed on the asking agent is ever answered.
    resolveCredential: async ({ agentId, serviceId, credentialId }) => {
      const service = store.get(serviceId);
      const placed = hub.placementOf(serviceId)?.assignments.some((a) => a.agentId === agentId) ?? false;
      if (service === undefined || service.lifecycle !== 'deployed' || service.definition.service_type !== 'external' || service.definition.external_auth_credential_id !== credentialId || !placed) {
        return { code: CredentialErrorCodes.FORBIDDEN, message: `credential ${credentialId.slice(0, 64)} is not referenced by an external service placed on agent ${agentId}` };
      }
      return credentials.lookup(credentialId);
    },
  });

  // What clients cause is logged rate-limited: a flood of bad requests is no flood of log lines.
  const edgeLog = new LogThrottle(() => logger, 20, 10_000, now);
  const guardStall = sendStallGuard(http.sendStallTimeoutMs, edgeLog);

  const routes: Route[] = [
    ...containerRoutes({ store, status: hub, logger: logger.child({ component: 'containers' }), now }),
    ...proxyRoutes({ store, hub, logger: logger.child({ component: 'proxy' }), guardStall }),
    ...logsRoutes({ store, hub, logger: logger.child({ component: 'logs' }) }),
    ...agentRoutes({
      agents: () => hub.agents(),
      placementOf: (id) => hub.placementOf(id),
      deployedServices: () => store.list().filter((s) => s.lifecycle === 'deployed').map((s) => ({ id: s.id, deployedAt: s.deployedAt })),
      heartbeatIntervalMs: hub.heartbeatIntervalMs(),
      now,
    }),
  ];

  /**
   * One request: the target is parsed first (400), the key checked before routing (no key: 401
   * on every path), then the route runs. A route that answers within the call (the proxy's
   * bodiless requests, the errors) is finished at once, one that waits when its promise settles:
   * no promise per request where none is needed. A body the answer leaves unread is not drained:
   * the connection closes after the answer.
   */
  const handle = (req: IncomingMessage, res: ServerResponse): Promise<void> | undefined => {
    const url = parseRequestTarget(req.url);
    const method = req.method ?? 'GET';
    let result: HttpResult;
    if (url === undefined) {
      result = fail(400, 'the request-target is not a path this gateway serves: send an origin-form target such as /api/v1/containers');
    } else if (url.pathname === AGENT_CONNECT_PATH) {
      const auth = authenticateAgent(req.headers.authorization, agentKeyring);
      result = auth.ok ? fail(426, `${AGENT_CONNECT_PATH} is the agent WebSocket endpoint: connect with a WebSocket upgrade`) : fail(auth.status, auth.message);
    } else {
      const auth = apiAuth.check(req.socket, req.headers.authorization);
      const match = auth.ok ? matchRoute(routes, method, url.pathname) : undefined;
      if (!auth.ok) result = fail(auth.status, auth.message);
      else if (match === undefined || match.kind === 'not-found') result = fail(404, `no route for ${method} ${url.pathname.slice(0, 200)}`);
      else if (match.kind === 'method-not-allowed') {
        result = { ...fail(405, `${method} is not allowed on ${url.pathname} (allowed: ${match.allow.join(', ')})`), headers: { allow: match.allow.join(', ') } };
      } else {
        const ctx = new RequestContext(req, res, match.params, url, maxBodyBytes);
        const answer = match.route.handler(ctx);
        if (answer instanceof Promise) return answer.then((r) => finish(req, res, r, ctx.bodyRead));
        finish(req, res, answer, ctx.bodyRead);
        return undefined;
      }
    }
    finish(req, res, result, false);
    return undefined;
  };

  /** Sends a route's answer (nothing when it answered itself: STREAMED). */
  const finish = (req: IncomingMessage, res: ServerResponse, answer: HttpResult, bodyRead: boolean): void => {
    if (answer === STREAMED) return;
    const result = !bodyRead && hasRequestBody(req) && !req.complete ? { ...answer, headers: { ...answer.headers, connection: 'close' } } : answer;
    sendJson(res, result);
    if (!bodyRead) req.resume();
  };

  const failed = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    edgeLog.error({ err, method: req.method, path: req.url?.slice(0, 200) }, 'gateway request failed');
    if (!res.headersSent) sendJson(res, { ...fail(500, 'internal gateway error'), headers: { connection: 'close' } });
    else res.destroy();
  };

  // No whole-request deadline (requestTimeout 0): proxied uploads and streams may legitimately
  // take long. The head has its own deadline, and a body that stops arriving is cut off.
  const inFlight = inFlightRequests();
  const server = createServer(
    {
      requestTimeout: 0,
      headersTimeout: http.headTimeoutMs,
      keepAliveTimeout: http.keepAliveTimeoutMs,
      maxHeaderSize: http.maxHeadBytes,
      connectionsCheckingInterval: Math.min(1000, http.headTimeoutMs),
    },
    (req, res) => {
      inFlight.track(res);
      try {
        if (hasRequestBody(req)) {
          guardBodyIdle(req, res, http.bodyIdleTimeoutMs, () => {
            edgeLog.warn({ remote: req.socket.remoteAddress, path: req.url?.slice(0, 200), idleMs: http.bodyIdleTimeoutMs }, 'request body stopped arriving: connection closed');
            req.destroy();
          });
        }
        handle(req, res)?.catch((err: unknown) => failed(req, res, err));
      } catch (err) {
        failed(req, res, err);
      }
    },
  );
  const proxyUpgrade = proxyUpgradeHandler({ store, hub, apiKeys, guardStall });
  server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
    socket.on('error', () => undefined);
    try {
      const url = parseRequestTarget(req.url);
      if (url === undefined) rejectUpgrade(socket, 400, 'the request-target is not a path this gateway serves');
      else if (url.pathname === AGENT_CONNECT_PATH) hub.handleUpgrade(req, socket, head);
      else proxyUpgrade(req, socket, head, url);
    } catch (err) {
      edgeLog.error({ err, path: req.url?.slice(0, 200) }, 'gateway upgrade handler failed');
      rejectUpgrade(socket, 500, 'internal gateway error');
    }
  });
  // Not a forward proxy: CONNECT (authority-form) is answered instead of silently dropped.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => undefined);
    rejectUpgrade(socket, 405, 'this gateway is not a forward proxy: CONNECT is not supported', { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' });
  });
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex & { remoteAddress?: string }) => {
    const status = answerClientError(err, socket, http);
    if (status !== undefined) edgeLog.warn({ code: err.code, status, remote: socket.remoteAddress }, 'malformed request refused');
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await hub.close();
    throw err;
  }
  // After listening, errors (e.g. EMFILE on accept under a connection flood) are logged, not fatal.
  server.on('error', (err) => edgeLog.error({ err }, 'gateway server error'));
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  const base = `${hostForUrl}:${port}`;
  logger.info({ url: `http://${base}` }, 'local gateway listening');

  let closing: Promise<void> | undefined;
  return {
    url: `http://${base}`,
    agentUrl: `ws://${base}${AGENT_CONNECT_PATH}`,
    port,
    close() {
      closing ??= (async () => {
        // Graceful, as a mature HTTP server stops: no new connections; every response from now on
        // ends its connection; idle keep-alive connections get a short grace first, so that a
        // request a client already sent on one (still unread in the socket) is answered rather
        // than reset — closing them at once lost such requests under load (docs/reliability.md);
        // requests in progress are answered (bounded by http.shutdownDrainMs) before the tunnels go.
        // net.Server's close, not http.Server's: the latter destroys idle connections at once.
        const stopped = new Promise<void>((resolve) => netServerClose.call(server, () => resolve()));
        inFlight.beginDrain();
        // The grace is for connections that exist: with none open, `stopped` has already resolved.
        let graceTimer: NodeJS.Timeout | undefined;
        await Promise.race([stopped, new Promise<void>((r) => (graceTimer = setTimeout(r, Math.min(IDLE_CONNECTION_GRACE_MS, http.shutdownDrainMs))))]);
        clearTimeout(graceTimer);
        server.closeIdleConnections();
        await inFlight.drained(http.shutdownDrainMs);
        await hub.close();
        server.closeAllConnections();
        server.close(); // http.Server's part: stops its connection-timeout checks (listening ended above)
        await stopped;
        logger.info('local gateway stopped');
      })();
      return closing;
    },
  };
}

/** A route's view of one request: a class, so that the context costs one small object per request. */
class RequestContext implements RouteContext {
  bodyRead = false;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly params: Record<string, string>,
    readonly url: URL,
    private readonly maxBodyBytes: number,
  ) {}

  /** Built on first use: most routes (the proxy's among them) never read the query. */
  get query(): URLSearchParams {
    return this.url.searchParams;
  }

  readBody(): Promise<BodyResult> {
    this.bodyRead = true;
    return readJsonBody(this.req, this.maxBodyBytes);
  }
}
