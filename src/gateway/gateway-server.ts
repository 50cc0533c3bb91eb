import { CredentialErrorCodes } from '../errors.js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { AGENT_CONNECT_PATH } from '../tunnel/protocol.js';
import { AgentHub } from './agent-hub.js';
import { KeySet, authenticateApi } from './auth.js';
import { STREAMED, fail, readJsonBody, sendJson, type HttpResult } from './http-io.js';
import { matchRoute, type Route } from './router.js';
import { agentRoutes } from './routes-agents.js';
import { containerRoutes } from './routes-containers.js';
import { CredentialsStore } from './credentials-store.js';
import { proxyUpgradeHandler } from './proxy-upgrade.js';
import { RUNTIME, proxyRoutes } from './routes-proxy.js';
import { ServiceStore } from './service-store.js';

export interface GatewayOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 = an ephemeral port. */
  port: number;
  /** Where service definitions are persisted. */
  dataDir: string;
  /** sk-… (and dk-…) keys accepted by the REST API. */
  apiKeys: string[];
  /** ak-… keys accepted on the agent endpoint. */
  agentKeys: string[];
  logger: Logger;
  /** Sent to agents in `welcome`; default 15 s. */
  heartbeatIntervalMs?: number;
  /** WebSocket ping interval; default 30 s. */
  pingIntervalMs?: number;
  /** Default 10 s. */
  helloTimeoutMs?: number;
  /** How long a disconnected agent keeps its placements; default 2 min, 0 = none. */
  disconnectGraceMs?: number;
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
  const store = await ServiceStore.open(options.dataDir, logger.child({ component: 'service-store' }));
  const apiKeys = new KeySet(options.apiKeys);
  const credentials = new CredentialsStore(options.dataDir);
  const hub = new AgentHub({
    store,
    agentKeys: new KeySet(options.agentKeys),
    logger: logger.child({ component: 'agent-hub' }),
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 15_000,
    pingIntervalMs: options.pingIntervalMs ?? 30_000,
    helloTimeoutMs: options.helloTimeoutMs ?? 10_000,
    disconnectGraceMs: options.disconnectGraceMs ?? 120_000,
    now,
    // Only the credential of an external service placed on the asking agent is ever answered.
    resolveCredential: async ({ agentId, serviceId, credentialId }) => {
      const service = store.get(serviceId);
      const placed = hub.placementOf(serviceId)?.assignments.some((a) => a.agentId === agentId) ?? false;
      if (service === undefined || service.lifecycle !== 'deployed' || service.definition.service_type !== 'external' || service.definition.external_auth_credential_id !== credentialId || !placed) {
        return { code: CredentialErrorCodes.FORBIDDEN, message: `credential ${credentialId} is not referenced by an external service placed on agent ${agentId}` };
      }
      return credentials.lookup(credentialId);
    },
  });

  const routes: Route[] = [
    ...containerRoutes({ store, status: hub, logger: logger.child({ component: 'containers' }), now }),
    ...proxyRoutes({ store, hub, logger: logger.child({ component: 'proxy' }) }),
    ...agentRoutes({
      agents: () => hub.agents(),
      placementOf: (id) => hub.placementOf(id),
      deployedServices: () => store.list().filter((s) => s.lifecycle === 'deployed').map((s) => ({ id: s.id, deployedAt: s.deployedAt })),
      heartbeatIntervalMs: hub.heartbeatIntervalMs(),
      now,
    }),
  ];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const method = req.method ?? 'GET';
    const match = matchRoute(routes, method, url.pathname);
    let result: HttpResult;
    if (match.kind === 'not-found') {
      result = url.pathname === AGENT_CONNECT_PATH
        ? fail(426, `${AGENT_CONNECT_PATH} is the agent WebSocket endpoint: connect with a WebSocket upgrade`)
        : fail(404, `no route for ${method} ${url.pathname}`);
    } else if (match.kind === 'method-not-allowed') {
      result = { ...fail(405, `${method} is not allowed on ${url.pathname} (allowed: ${match.allow.join(', ')})`), headers: { allow: match.allow.join(', ') } };
    } else {
      const auth = authenticateApi(req.headers.authorization, apiKeys);
      if (!auth.ok) {
        result = fail(auth.status, auth.message);
      } else {
        let bodyRead = false;
        result = await match.route.handler({
          req,
          res,
          params: match.params,
          url,
          query: url.searchParams,
          readBody: () => {
            bodyRead = true;
            return readJsonBody(req, maxBodyBytes);
          },
        });
        if (!bodyRead && result !== STREAMED) req.resume();
      }
    }
    if (result !== STREAMED) sendJson(res, result);
  };

  // No whole-request deadline: proxied uploads and streams may legitimately take long; slow
  // headers are still cut off by Node's headersTimeout.
  const server = createServer({ requestTimeout: 0 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err, method: req.method, path: req.url }, 'gateway request failed');
      if (!res.headersSent) sendJson(res, fail(500, `internal gateway error: ${err instanceof Error ? err.message : String(err)}`));
      else res.destroy();
    });
  });
  const proxyUpgrade = proxyUpgradeHandler({ store, hub, apiKeys });
  server.on('upgrade', (req, socket, head) => {
    if ((req.url ?? '').startsWith(`${RUNTIME}/`)) proxyUpgrade(req, socket, head);
    else hub.handleUpgrade(req, socket, head);
  });
  server.on('clientError', (_err, socket) => socket.destroy());

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
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await hub.close();
        server.closeAllConnections();
        await stopped;
        logger.info('local gateway stopped');
      })();
      return closing;
    },
  };
}
