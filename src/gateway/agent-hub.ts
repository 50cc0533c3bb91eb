import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ProtocolErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import { CLOSE_HELLO_TIMEOUT, MAX_FRAME_BYTES, type HeartbeatFrame, type HelloFrame } from '../tunnel/protocol.js';
import type { StreamOpenFrame } from '../tunnel/protocol-stream.js';
import type { PendingResponse, ResponseWaiter } from '../tunnel/pending-response.js';
import type { TunnelStream } from '../tunnel/tunnel-stream.js';
import type { Corkable } from '../tunnel/ws-transport.js';
import { AgentRoster } from './agent-roster.js';
import { AgentSession } from './agent-session.js';
import { authenticateAgent, type AgentKeyring } from './auth.js';
import { LogThrottle, type ConnectionLimits } from './connection-limits.js';
import { answerCredential, type ResolveCredential } from './credential-answers.js';
import { DesiredSync } from './desired-sync.js';
import { rejectUpgrade } from './http-io.js';
import type { ServicePlacement } from './placement.js';
import type { AgentReport, DepartedAgent } from './service-status.js';
import type { ServiceStore } from './service-store.js';

export interface AgentHubOptions {
  store: ServiceStore;
  agentKeys: AgentKeyring;
  logger: Logger;
  heartbeatIntervalMs: number;
  /** The gateway pings every agent this often and terminates one that missed the last pong. */
  pingIntervalMs: number;
  /** A connection that sent no valid hello within this is closed. */
  helloTimeoutMs: number;
  /**
   * A hello for an agent id held by a connected session replaces that session only if it does not
   * answer a ping within this (agent-claims.ts); otherwise the newcomer is refused (4005).
   */
  replaceTimeoutMs: number;
  /** What one agent connection may cost (connection-limits.ts). */
  limits: ConnectionLimits;
  /**
   * How long a disconnected agent keeps its placements: a tunnel that drops and comes back within
   * it moves nothing. 0: its services are placed elsewhere at once.
   */
  disconnectGraceMs: number;
  now: () => number;
  /**
   * Answers an agent's credential.resolve; must refuse anything but the credential of a service
   * placed on that agent. Absent: every request is refused.
   */
  resolveCredential?: ResolveCredential;
}

/** A stream.open minus what the hub fills in. */
export type StreamRequest = Omit<StreamOpenFrame, 'type' | 'stream_id'>;

/** A connected agent after its hello, as the REST routes see it. */
export interface ConnectedAgent {
  hello: HelloFrame;
  connectedAt: number;
  lastHeartbeat: number | undefined;
  heartbeat: HeartbeatFrame | undefined;
  /** Latest report per service id. */
  reports: ReadonlyMap<string, AgentReport>;
}

/**
 * The agent endpoint: authenticates upgrades with ak- keys, keeps one AgentSession per
 * connection (agent-session.ts), one identified session per agent id (agent-roster.ts: the id a
 * key is issued for, replacement only of a session that stopped answering), and keeps placement
 * and every agent's `services.sync` current through DesiredSync (desired-sync.ts). It pings every
 * connection and terminates one that stopped reading (its send buffer stayed above the limit).
 */
export class AgentHub {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  private readonly all = new Set<AgentSession>();
  private readonly sync: DesiredSync;
  private readonly roster: AgentRoster;
  /** Refused upgrades, rate-limited: unauthenticated clients cannot turn requests into log volume. */
  private readonly refusals: LogThrottle;
  private nextConnId = 1;
  private closing = false;
  private readonly pingTimer: NodeJS.Timeout;
  private readonly bufferTimer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(private readonly options: AgentHubOptions) {
    this.sync = new DesiredSync({
      store: options.store,
      logger: options.logger,
      disconnectGraceMs: options.disconnectGraceMs,
      now: options.now,
      onGraceExpired: () => this.reschedule(),
    });
    this.roster = new AgentRoster({
      sync: this.sync,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      replaceTimeoutMs: options.replaceTimeoutMs,
      reschedule: () => this.reschedule(),
    });
    this.refusals = new LogThrottle(() => options.logger, 10, 10_000, options.now);
    this.unsubscribe = options.store.onChange(() => this.reschedule());
    this.pingTimer = setInterval(() => this.pingAll(), options.pingIntervalMs);
    this.pingTimer.unref();
    this.bufferTimer = setInterval(() => this.checkSendBuffers(), 1000);
    this.bufferTimer.unref();
    this.reschedule();
  }

  /**
   * For the HTTP server's `upgrade` event on the agent endpoint (the server routes by path).
   * Answers 401 itself before any WebSocket exists; never throws.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    const auth = authenticateAgent(req.headers.authorization, this.options.agentKeys);
    if (!auth.ok) {
      this.refusals.warn({ remote: req.socket.remoteAddress, reason: auth.message }, 'agent connection refused');
      rejectUpgrade(socket, auth.status, auth.message);
      return;
    }
    const remote = req.socket.remoteAddress ?? 'unknown';
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, remote, socket as Duplex & Corkable, auth.agentId));
  }

  /** Connected agents that said hello, by agent id. */
  agents(): ConnectedAgent[] {
    return [...this.roster.byAgent.values()].flatMap((s) =>
      s.hello === undefined ? [] : [{ hello: s.hello, connectedAt: s.connectedAt, lastHeartbeat: s.lastHeartbeat, heartbeat: s.heartbeat, reports: s.reports }],
    );
  }

  /** Current placement of a deployed service (undefined when not deployed). */
  placementOf(serviceId: string): ServicePlacement | undefined {
    return this.sync.placementOf(serviceId);
  }

  /** Agents disconnected less than the grace ago, whose services are still placed on them. */
  departedAgents(): ReadonlyMap<string, DepartedAgent> {
    return this.sync.departedAgents();
  }

  /** Latest reports about a service from every connected agent. */
  reportsFor(serviceId: string): AgentReport[] {
    // A plain loop: this runs on every proxied request.
    const out: AgentReport[] = [];
    for (const session of this.roster.byAgent.values()) {
      const r = session.reports.get(serviceId);
      if (r !== undefined) out.push(r);
    }
    return out;
  }

  /**
   * Opens a proxied stream to a connected agent (stream.open is sent at once); undefined when the
   * agent is not connected. The caller writes the request body and reads `response` + body.
   */
  openStream(agentId: string, request: StreamRequest): TunnelStream | undefined {
    const session = this.connected(agentId);
    if (session === undefined) return undefined;
    const stream = session.mux.open(request.has_body === false && request.upgrade !== true);
    sendOpen(session, stream.id, request);
    return stream;
  }

  /**
   * Sends a request without a body (`has_body: false`, no upgrade) to a connected agent; its answer
   * goes to `waiter` (pending-response.ts). Undefined when the agent is not connected.
   */
  request(agentId: string, request: StreamRequest & { has_body: false }, waiter: ResponseWaiter): PendingResponse | undefined {
    const session = this.connected(agentId);
    if (session === undefined) return undefined;
    const pending = session.mux.request(waiter);
    sendOpen(session, pending.id, request);
    return pending;
  }

  private connected(agentId: string): AgentSession | undefined {
    const session = this.roster.byAgent.get(agentId);
    return session === undefined || session.hello === undefined || session.ws.readyState !== session.ws.OPEN ? undefined : session;
  }

  /** Proxied streams open to an agent (0 when not connected). */
  openStreams(agentId: string): number {
    return this.roster.byAgent.get(agentId)?.mux.size ?? 0;
  }

  heartbeatIntervalMs(): number {
    return this.options.heartbeatIntervalMs;
  }

  /** Closes every agent connection (1001 going away). Agents reconnect to the next gateway. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.pingTimer);
    clearInterval(this.bufferTimer);
    this.roster.close();
    this.sync.close();
    this.unsubscribe();
    for (const session of this.all) {
      clearTimeout(session.helloTimer);
      session.ws.close(1001, 'gateway shutting down');
    }
    const deadline = setTimeout(() => {
      for (const session of this.all) session.ws.terminate();
    }, 1000);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await Promise.all([...this.all].map((s) => waitClosed(s.ws)));
    clearTimeout(deadline);
  }

  private accept(ws: WebSocket, remote: string, socket: Corkable, boundAgentId: string | undefined): void {
    const { store } = this.options;
    const session = new AgentSession(
      this.nextConnId++,
      ws,
      remote,
      socket,
      boundAgentId,
      {
        onHello: (s, hello) => this.roster.onHello(s, hello),
        onCredentialResolve: (s, frame) => void answerCredential(s, frame, this.options.resolveCredential),
        knowsService: (id) => store.get(id) !== undefined,
      },
      this.options.logger,
      this.options.limits,
      this.options.now,
    );
    this.all.add(session);
    session.helloTimer = setTimeout(() => {
      session.sendError(ProtocolErrorCodes.UNEXPECTED_FRAME, `no hello within ${this.options.helloTimeoutMs} ms`, undefined);
      session.end(CLOSE_HELLO_TIMEOUT, 'hello timeout');
    }, this.options.helloTimeoutMs);
    ws.on('pong', () => {
      session.alive = true;
    });
    ws.on('error', (err) => session.warnings.warn({ err }, 'agent socket error'));
    ws.on('message', (data, isBinary) => session.onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.onClose(session, code, reason.toString()));
    session.log.info({ sharedKey: boundAgentId === undefined }, 'agent connection accepted');
  }

  private onClose(session: AgentSession, code: number, reason: string): void {
    clearTimeout(session.helloTimer);
    session.warnings.flush();
    session.mux.closeAll(`agent connection closed (code ${code})`);
    this.all.delete(session);
    session.log.info({ code, reason }, 'agent disconnected');
    if (this.roster.onClose(session, this.closing)) this.reschedule();
  }

  private reschedule(): void {
    this.sync.reschedule(this.roster.byAgent);
  }

  private pingAll(): void {
    for (const session of this.all) {
      if (!session.alive) {
        this.options.logger.warn({ conn: session.id, agentId: session.agentId }, 'agent missed a pong: terminating');
        session.ws.terminate();
        continue;
      }
      session.alive = false;
      session.ws.ping();
    }
  }

  /** Terminates connections whose unsent bytes stayed above the limit (a peer that stopped reading). */
  private checkSendBuffers(): void {
    const now = this.options.now();
    for (const session of this.all) {
      if (session.sendBufferOk(now)) continue;
      session.log.warn({ buffered: session.ws.bufferedAmount, limit: this.options.limits.sendBufferLimitBytes, graceMs: this.options.limits.sendBufferGraceMs }, 'agent does not read: its send buffer stayed above the limit; terminating');
      session.ending = true;
      session.ws.terminate();
    }
  }
}

/** The stream.open of stream `id`. */
function sendOpen(session: AgentSession, id: number, request: StreamRequest): void {
  // Named fields rather than a spread: JSON.stringify walks a spread copy ~1.5x slower (the
  // frame is encoded for every proxied request); undefined ones are left out of the JSON. The
  // `satisfies` names every field of stream.open, so one added to the frame cannot be left out.
  const frame = {
    type: 'stream.open',
    stream_id: id,
    service_id: request.service_id,
    method: request.method,
    path: request.path,
    headers: request.headers,
    has_body: request.has_body,
    upgrade: request.upgrade,
    purpose: request.purpose,
  } as const satisfies { [K in keyof Required<StreamOpenFrame>]: unknown };
  session.send(frame);
}

function waitClosed(ws: WebSocket): Promise<void> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve();
  return new Promise((resolve) => ws.once('close', () => resolve()));
}
