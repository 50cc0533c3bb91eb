import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ProtocolErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import {
  AGENT_CONNECT_PATH,
  CLOSE_HELLO_TIMEOUT,
  CLOSE_REPLACED,
  CLOSE_UNSUPPORTED_VERSION,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  type HeartbeatFrame,
  type HelloFrame,
} from '../tunnel/protocol.js';
import type { StreamOpenFrame } from '../tunnel/protocol-stream.js';
import type { TunnelStream } from '../tunnel/tunnel-stream.js';
import type { Corkable } from '../tunnel/ws-transport.js';
import { AgentSession } from './agent-session.js';
import { authenticateAgent, type KeySet } from './auth.js';
import { answerCredential, type ResolveCredential } from './credential-answers.js';
import { DesiredSync } from './desired-sync.js';
import { rejectUpgrade } from './http-io.js';
import type { ServicePlacement } from './placement.js';
import type { AgentReport, DepartedAgent } from './service-status.js';
import type { ServiceStore } from './service-store.js';

export interface AgentHubOptions {
  store: ServiceStore;
  agentKeys: KeySet;
  logger: Logger;
  heartbeatIntervalMs: number;
  /** The gateway pings every agent this often and terminates one that missed the last pong. */
  pingIntervalMs: number;
  /** A connection that sent no valid hello within this is closed. */
  helloTimeoutMs: number;
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
 * connection (agent-session.ts) and one identified session per agent id, and keeps placement and
 * every agent's `services.sync` current through DesiredSync (desired-sync.ts).
 */
export class AgentHub {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  private readonly byAgent = new Map<string, AgentSession>();
  private readonly all = new Set<AgentSession>();
  private readonly sync: DesiredSync;
  private nextConnId = 1;
  private closing = false;
  private readonly pingTimer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(private readonly options: AgentHubOptions) {
    this.sync = new DesiredSync({
      store: options.store,
      logger: options.logger,
      disconnectGraceMs: options.disconnectGraceMs,
      now: options.now,
      onGraceExpired: () => this.reschedule(),
    });
    this.unsubscribe = options.store.onChange(() => this.reschedule());
    this.pingTimer = setInterval(() => this.pingAll(), options.pingIntervalMs);
    this.pingTimer.unref();
    this.reschedule();
  }

  /** For the HTTP server's `upgrade` event. Answers 404/401 itself; never throws. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    const path = new URL(req.url ?? '/', 'http://gateway').pathname;
    if (path !== AGENT_CONNECT_PATH) {
      rejectUpgrade(socket, 404, `no WebSocket endpoint at ${path}; agents connect to ${AGENT_CONNECT_PATH}`);
      return;
    }
    const auth = authenticateAgent(req.headers.authorization, this.options.agentKeys);
    if (!auth.ok) {
      this.options.logger.warn({ remote: req.socket.remoteAddress, reason: auth.message }, 'agent connection refused');
      rejectUpgrade(socket, auth.status, auth.message);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req.socket.remoteAddress ?? 'unknown', socket as Duplex & Corkable));
  }

  /** Connected agents that said hello, by agent id. */
  agents(): ConnectedAgent[] {
    return [...this.byAgent.values()].flatMap((s) =>
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
    return [...this.byAgent.values()].flatMap((s) => {
      const r = s.reports.get(serviceId);
      return r === undefined ? [] : [r];
    });
  }

  /**
   * Opens a proxied stream to a connected agent (stream.open is sent at once); undefined when the
   * agent is not connected. The caller writes the request body and reads `response` + body.
   */
  openStream(agentId: string, request: StreamRequest): TunnelStream | undefined {
    const session = this.byAgent.get(agentId);
    if (session === undefined || session.hello === undefined || session.ws.readyState !== session.ws.OPEN) return undefined;
    const stream = session.mux.open();
    session.send({ type: 'stream.open', stream_id: stream.id, ...request });
    return stream;
  }

  /** Proxied streams open to an agent (0 when not connected). */
  openStreams(agentId: string): number {
    return this.byAgent.get(agentId)?.mux.size ?? 0;
  }

  heartbeatIntervalMs(): number {
    return this.options.heartbeatIntervalMs;
  }

  /** Closes every agent connection (1001 going away). Agents reconnect to the next gateway. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.pingTimer);
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

  private accept(ws: WebSocket, remote: string, socket: Corkable): void {
    const session = new AgentSession(
      this.nextConnId++,
      ws,
      remote,
      socket,
      {
        onHello: (s, hello) => this.onHello(s, hello),
        onCredentialResolve: (s, frame) => void answerCredential(s, frame, this.options.resolveCredential),
      },
      this.options.logger,
      this.options.now,
    );
    this.all.add(session);
    session.helloTimer = setTimeout(() => {
      session.sendError(ProtocolErrorCodes.UNEXPECTED_FRAME, `no hello within ${this.options.helloTimeoutMs} ms`, undefined);
      ws.close(CLOSE_HELLO_TIMEOUT, 'hello timeout');
    }, this.options.helloTimeoutMs);
    ws.on('pong', () => {
      session.alive = true;
    });
    ws.on('error', (err) => session.log.warn({ err }, 'agent socket error'));
    ws.on('message', (data, isBinary) => session.onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.onClose(session, code, reason.toString()));
    session.log.info('agent connection accepted');
  }

  private onClose(session: AgentSession, code: number, reason: string): void {
    clearTimeout(session.helloTimer);
    session.mux.closeAll(`agent connection closed (code ${code})`);
    this.all.delete(session);
    const agentId = session.agentId;
    session.log.info({ agentId, code, reason }, 'agent disconnected');
    if (agentId !== undefined && this.byAgent.get(agentId) === session) {
      this.byAgent.delete(agentId);
      if (session.hello !== undefined && !this.closing) this.sync.hold(session.hello);
      this.reschedule();
    }
  }

  private onHello(session: AgentSession, hello: HelloFrame): void {
    if (hello.protocol_version !== PROTOCOL_VERSION) {
      session.sendError(
        ProtocolErrorCodes.UNSUPPORTED_VERSION,
        `protocol_version ${hello.protocol_version} is not supported; this gateway speaks ${PROTOCOL_VERSION}`,
        'hello',
      );
      session.ws.close(CLOSE_UNSUPPORTED_VERSION, 'unsupported protocol version');
      return;
    }
    clearTimeout(session.helloTimer);
    const previous = this.byAgent.get(hello.agent_id);
    if (previous !== undefined && previous !== session) {
      session.log.warn({ agentId: hello.agent_id }, 'agent id reconnected: closing its older connection');
      previous.ws.close(CLOSE_REPLACED, 'replaced by a newer connection of this agent_id');
    }
    const first = session.hello === undefined;
    session.identify(hello);
    this.byAgent.set(hello.agent_id, session);
    const awayMs = this.sync.returned(hello.agent_id);
    if (awayMs !== undefined) session.log.info({ awayMs }, 'agent back within the disconnect grace; its placements kept');
    session.log.info({ labels: hello.labels, gpus: hello.gpu_devices.length, first }, 'agent hello');
    session.send({ type: 'welcome', protocol_version: PROTOCOL_VERSION, heartbeat_interval_ms: this.options.heartbeatIntervalMs });
    this.reschedule();
  }

  private reschedule(): void {
    this.sync.reschedule(this.byAgent);
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
}

function waitClosed(ws: WebSocket): Promise<void> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve();
  return new Promise((resolve) => ws.once('close', () => resolve()));
}
