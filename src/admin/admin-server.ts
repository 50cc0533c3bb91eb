import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { AgentError, ErrorCodes, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { describeAdminAddress, type AdminAddress } from '../config/admin-listen.js';
import type { AdminStatus } from './status-view.js';
import { logLine, parseLogQuery, type ReplicaLogEntry, type ServiceLogQuery } from '../domain/log-entry.js';
import { drainedOrClosed } from '../util/drained-or-closed.js';

export interface AdminServerOptions {
  address: Exclude<AdminAddress, { kind: 'off' }>;
  status: () => AdminStatus;
  /** False while the agent is still starting: /healthz answers 503 "starting" until it is true. */
  ready: () => boolean;
  metrics: () => Promise<{ contentType: string; text: string }>;
  /** Tries the failed replicas of a service again (POST /services/{slug}/retry); false: unknown slug. */
  retry: (slug: string) => boolean;
  /** The replica logs of a service (GET /services/{slug}/logs); undefined: unknown slug. */
  logs: (slug: string, query: ServiceLogQuery, signal: AbortSignal) => AsyncIterable<ReplicaLogEntry> | undefined;
  logger: Logger;
}

/** A running admin endpoint. */
export interface AdminServer {
  /** Where it listens (a tcp port 0 resolved to the real port). */
  address: Exclude<AdminAddress, { kind: 'off' }>;
  /** Stops listening, drops open connections, removes the socket file. Idempotent. */
  close(): Promise<void>;
}

/**
 * The local admin endpoint: `GET /healthz` (200 "ok" once the agent has started: engine reached,
 * state restored, tunnel dialing; 503 "starting" before), `GET /status` (JSON,
 * see status-view.ts), `GET /metrics` (Prometheus text), and one action, `POST
 * /services/{slug}/retry` (try failed replicas again now; harmless: it only shortens a backoff), and
 * `GET /services/{slug}/logs?tail=&since=&replica=&follow=` (the replicas' logs as NDJSON). No
 * authentication, so it only ever listens where other hosts cannot reach it: a unix socket made
 * mode 0600 (its directory 0700 when created here) or a loopback TCP address (any local user can
 * use it then: use the socket on shared hosts).
 *
 * Throws AgentError(ADMIN_LISTEN) when the socket is served by another live process (two agents on
 * one state dir) or the address cannot be bound. A stale socket file (no listener) is replaced.
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { logger } = options;
  const server = createServer((req, res) => {
    void handle(req, res, options).catch((err: unknown) => {
      logger.warn({ err, path: req.url }, 'admin request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 1_000;
  let address = options.address;
  if (address.kind === 'unix') {
    await prepareSocketPath(address.path);
    await listen(server, { path: address.path });
    await chmod(address.path, 0o600);
  } else {
    await listen(server, { host: address.host, port: address.port });
    address = { ...address, port: (server.address() as AddressInfo).port };
  }
  server.unref();
  logger.info({ admin: describeAdminAddress(address) }, 'admin endpoint listening');
  let closed: Promise<void> | undefined;
  const bound = address;
  return {
    address: bound,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(async () => {
        if (bound.kind === 'unix') await unlink(bound.path).catch(() => undefined);
      })),
  };
}

/** NDJSON, one line per entry (domain/log-entry.ts logLine); with follow, until the client leaves. */
async function serveLogs(res: ServerResponse, slug: string, params: URLSearchParams, options: AdminServerOptions): Promise<void> {
  const parsed = parseLogQuery(params);
  if (!parsed.ok) return send(res, 400, 'application/json', JSON.stringify({ error: parsed.problems.join('; ') }));
  const abort = new AbortController();
  const entries = options.logs(slug, parsed.query, abort.signal);
  if (entries === undefined) return send(res, 404, 'application/json', JSON.stringify({ error: `no service "${slug}" is desired on this agent; cyberun-agent status lists them` }));
  res.once('close', () => abort.abort());
  res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store' });
  try {
    for await (const entry of entries) {
      if (res.destroyed) break;
      if (!res.write(logLine(entry))) await drainedOrClosed(res);
    }
  } finally {
    abort.abort();
    res.end();
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, options: AdminServerOptions): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const route = url.pathname.replace(/\/+$/, '') || '/';
  const retry = /^\/services\/([a-z0-9-]{1,100})\/retry$/.exec(route);
  if (retry !== null) {
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      send(res, 405, 'application/json', JSON.stringify({ error: `${req.method ?? ''} is not allowed on ${route}; use POST` }));
      return;
    }
    const slug = retry[1] ?? '';
    if (options.retry(slug)) send(res, 200, 'application/json', `${JSON.stringify({ retried: slug })}\n`);
    else send(res, 404, 'application/json', JSON.stringify({ error: `no service "${slug}" is desired on this agent; cyberun-agent status lists them` }));
    return;
  }
  const logs = /^\/services\/([a-z0-9-]{1,100})\/logs$/.exec(route);
  if (logs !== null && (req.method === 'GET' || req.method === 'HEAD')) {
    await serveLogs(res, logs[1] ?? '', url.searchParams, options);
    return;
  }
  if (!['/healthz', '/status', '/metrics'].includes(route)) {
    send(res, 404, 'application/json', JSON.stringify({ error: `no route ${route}; try /status, /metrics or /healthz` }));
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    send(res, 405, 'application/json', JSON.stringify({ error: `${req.method ?? ''} is not allowed; the admin endpoint is read-only` }));
    return;
  }
  if (route === '/healthz') send(res, options.ready() ? 200 : 503, 'text/plain; charset=utf-8', options.ready() ? 'ok\n' : 'starting\n');
  else if (route === '/status') send(res, 200, 'application/json', `${JSON.stringify(options.status())}\n`);
  else {
    const m = await options.metrics();
    send(res, 200, m.contentType, m.text);
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function listen(server: Server, at: { path: string } | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException): void => {
      const where = 'path' in at ? `unix:${at.path}` : `${at.host}:${at.port}`;
      reject(new AgentError(ErrorCodes.ADMIN_LISTEN, `admin endpoint cannot listen on ${where}: ${errorMessage(err)}; set admin.listen to another address, or "off"`, { cause: err }));
    };
    server.once('error', fail);
    server.listen(at, () => {
      server.off('error', fail);
      resolve();
    });
  });
}

/** Creates the socket's directory (0700) and removes a stale socket; refuses a live one. */
async function prepareSocketPath(socketPath: string): Promise<void> {
  await mkdir(path.dirname(socketPath), { recursive: true, mode: 0o700 });
  const info = await lstat(socketPath).catch(() => undefined);
  if (info === undefined) return;
  if (!info.isSocket()) {
    throw new AgentError(ErrorCodes.ADMIN_LISTEN, `admin endpoint: ${socketPath} exists and is not a socket; move it away or set admin.listen`);
  }
  if (await answers(socketPath)) {
    throw new AgentError(
      ErrorCodes.ADMIN_LISTEN,
      `admin endpoint: another process serves ${socketPath}; is another agent running with the same state_dir? Stop it, or give this one its own state_dir`,
    );
  }
  await unlink(socketPath);
}

function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path: socketPath });
    const done = (alive: boolean): void => {
      socket.destroy();
      resolve(alive);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
