import { CredentialErrorCodes, ProtocolErrorCodes } from '../errors.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Logger } from '../log.js';
import { AGENT_CONNECT_PATH, CLOSE_HELLO_TIMEOUT, CLOSE_REPLACED, CLOSE_UNSUPPORTED_VERSION, MAX_FRAME_BYTES, PROTOCOL_VERSION, encodeFrame, parseAgentFrame, type AgentFrame, type GatewayFrame, type HeartbeatFrame, type HelloFrame } from '../tunnel/protocol.js';
import type { CredentialResolveFrame, StreamOpenFrame } from '../tunnel/protocol-stream.js';
import { StreamMux } from '../tunnel/stream-mux.js';
import type { TunnelStream } from '../tunnel/tunnel-stream.js';
import { WsTransport, type Corkable } from '../tunnel/ws-transport.js';
import { authenticateAgent, type KeySet } from './auth.js';
import { computeDesiredSets } from './desired-sets.js';
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
  resolveCredential?: (request: { agentId: string; serviceId: string; credentialId: string }) => Promise<{ value: string; ttlMs?: number } | { code: string; message: string }>;
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

interface Connection {
  id: number;
  ws: WebSocket;
  remote: string;
  hello: HelloFrame | undefined;
  connectedAt: number;
  lastHeartbeat: number | undefined;
  heartbeat: HeartbeatFrame | undefined;
  reports: Map<string, AgentReport>;
  lastSyncKey: string | undefined;
  alive: boolean;
  helloTimer: NodeJS.Timeout | undefined;
  /** Every frame to the agent goes through it (write batching, see ws-transport.ts). */
  transport: WsTransport;
  /** Proxied streams on this connection. */
  mux: StreamMux;
  log: Logger;
}

/**
 * The agent endpoint: authenticates upgrades with ak- keys, speaks the tunnel protocol, places
 * deployed services on connected agents and keeps each agent's `services.sync` current.
 *
 * Whenever the store, the set of agents or an agent's hello changes, placement is recomputed and
 * every agent whose set changed gets a new full `services.sync` (revisions increase strictly;
 * they start at the gateway's start time in ms so they also grow across gateway restarts).
 */
export class AgentHub {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  private readonly byAgent = new Map<string, Connection>();
  /** Agents gone for less than `disconnectGraceMs`: still placement candidates, sent nothing. */
  private readonly departed = new Map<string, DepartedAgent & { hello: HelloFrame; timer: NodeJS.Timeout }>();
  private readonly all = new Set<Connection>();
  private placements = new Map<string, ServicePlacement>();
  private revision: number;
  private nextConnId = 1;
  private closing = false;
  private readonly pingTimer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(private readonly options: AgentHubOptions) {
    this.revision = options.now();
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
    return [...this.byAgent.values()].flatMap((c) =>
      c.hello === undefined
        ? []
        : [{ hello: c.hello, connectedAt: c.connectedAt, lastHeartbeat: c.lastHeartbeat, heartbeat: c.heartbeat, reports: c.reports }],
    );
  }

  /** Current placement of a deployed service (undefined when not deployed). */
  placementOf(serviceId: string): ServicePlacement | undefined {
    return this.placements.get(serviceId);
  }

  /** Latest reports about a service from every connected agent. */
  reportsFor(serviceId: string): AgentReport[] {
    return [...this.byAgent.values()].flatMap((c) => {
      const r = c.reports.get(serviceId);
      return r === undefined ? [] : [r];
    });
  }

  /**
   * Opens a proxied stream to a connected agent (stream.open is sent at once); undefined when the
   * agent is not connected. The caller writes the request body and reads `response` + body.
   */
  openStream(agentId: string, request: StreamRequest): TunnelStream | undefined {
    const conn = this.byAgent.get(agentId);
    if (conn === undefined || conn.hello === undefined || conn.ws.readyState !== conn.ws.OPEN) return undefined;
    const stream = conn.mux.open();
    this.send(conn, { type: 'stream.open', stream_id: stream.id, ...request });
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
    for (const d of this.departed.values()) clearTimeout(d.timer);
    this.departed.clear();
    this.unsubscribe();
    for (const conn of this.all) {
      clearTimeout(conn.helloTimer);
      conn.ws.close(1001, 'gateway shutting down');
    }
    const deadline = setTimeout(() => {
      for (const conn of this.all) conn.ws.terminate();
    }, 1000);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await Promise.all([...this.all].map((c) => waitClosed(c.ws)));
    clearTimeout(deadline);
  }

  private accept(ws: WebSocket, remote: string, socket: Corkable): void {
    const transport = new WsTransport(ws, socket);
    const id = this.nextConnId++;
    const conn: Connection = {
      id,
      ws,
      remote,
      hello: undefined,
      connectedAt: this.options.now(),
      lastHeartbeat: undefined,
      heartbeat: undefined,
      reports: new Map(),
      lastSyncKey: undefined,
      alive: true,
      helloTimer: undefined,
      transport,
      mux: new StreamMux({ transport }),
      log: this.options.logger.child({ conn: id, remote }),
    };
    this.all.add(conn);
    const log = conn.log;
    conn.helloTimer = setTimeout(() => {
      this.sendError(conn, ProtocolErrorCodes.UNEXPECTED_FRAME, `no hello within ${this.options.helloTimeoutMs} ms`, undefined);
      ws.close(CLOSE_HELLO_TIMEOUT, 'hello timeout');
    }, this.options.helloTimeoutMs);
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('error', (err) => log.warn({ err }, 'agent socket error'));
    ws.on('message', (data, isBinary) => this.onMessage(conn, data, isBinary));
    ws.on('close', (code, reason) => {
      clearTimeout(conn.helloTimer);
      conn.mux.closeAll(`agent connection closed (code ${code})`);
      this.all.delete(conn);
      const agentId = conn.hello?.agent_id;
      log.info({ agentId, code, reason: reason.toString() }, 'agent disconnected');
      if (agentId !== undefined && this.byAgent.get(agentId) === conn) {
        this.byAgent.delete(agentId);
        if (conn.hello !== undefined) this.holdPlacements(conn.hello);
        this.reschedule();
      }
    });
    log.info('agent connection accepted');
  }

  private onMessage(conn: Connection, data: RawData, isBinary: boolean): void {
    if (isBinary) {
      const problem = conn.hello === undefined ? 'binary frame before hello: send hello first' : conn.mux.handleData(rawToBuffer(data));
      if (problem !== undefined) this.sendError(conn, conn.hello === undefined ? ProtocolErrorCodes.UNEXPECTED_FRAME : ProtocolErrorCodes.INVALID_FRAME, problem, undefined);
      return;
    }
    const parsed = parseAgentFrame(rawToString(data));
    if (!parsed.ok) {
      conn.log.warn({ code: parsed.code, problem: parsed.message }, 'invalid frame from agent');
      this.sendError(conn, parsed.code, parsed.message, parsed.inReplyTo);
      return;
    }
    const frame = parsed.frame;
    if (frame.type !== 'hello' && frame.type !== 'error' && conn.hello === undefined) {
      this.sendError(conn, ProtocolErrorCodes.UNEXPECTED_FRAME, `${frame.type} before hello: send hello first`, frame.type);
      return;
    }
    this.handleFrame(conn, frame);
  }

  private handleFrame(conn: Connection, frame: AgentFrame): void {
    const now = this.options.now();
    switch (frame.type) {
      case 'hello':
        this.onHello(conn, frame);
        return;
      case 'heartbeat':
        conn.lastHeartbeat = now;
        conn.heartbeat = frame;
        return;
      case 'service.status': {
        const agentId = conn.hello?.agent_id ?? '';
        if (frame.status.state === 'stopped') conn.reports.delete(frame.status.serviceId);
        else conn.reports.set(frame.status.serviceId, { agentId, report: frame.status, receivedAt: now });
        return;
      }
      case 'status.snapshot': {
        const agentId = conn.hello?.agent_id ?? '';
        conn.reports = new Map(
          frame.services
            .filter((r) => r.state !== 'stopped')
            .map((r) => [r.serviceId, { agentId, report: r, receivedAt: now }]),
        );
        return;
      }
      case 'error':
        conn.log.warn({ code: frame.code, problem: frame.message, inReplyTo: frame.in_reply_to, serviceId: frame.service_id }, 'agent reported an error');
        return;
      case 'stream.response':
      case 'stream.window':
      case 'stream.end':
      case 'stream.reset':
        conn.mux.handleFrame(frame);
        return;
      case 'credential.resolve':
        void this.answerCredential(conn, frame);
        return;
    }
  }

  private onHello(conn: Connection, hello: HelloFrame): void {
    if (hello.protocol_version !== PROTOCOL_VERSION) {
      this.sendError(
        conn,
        ProtocolErrorCodes.UNSUPPORTED_VERSION,
        `protocol_version ${hello.protocol_version} is not supported; this gateway speaks ${PROTOCOL_VERSION}`,
        'hello',
      );
      conn.ws.close(CLOSE_UNSUPPORTED_VERSION, 'unsupported protocol version');
      return;
    }
    clearTimeout(conn.helloTimer);
    const previousConn = this.byAgent.get(hello.agent_id);
    if (previousConn !== undefined && previousConn !== conn) {
      conn.log.warn({ agentId: hello.agent_id }, 'agent id reconnected: closing its older connection');
      previousConn.ws.close(CLOSE_REPLACED, 'replaced by a newer connection of this agent_id');
    }
    const first = conn.hello === undefined;
    conn.hello = hello;
    conn.log = this.options.logger.child({ conn: conn.id, remote: conn.remote, agentId: hello.agent_id });
    conn.lastSyncKey = undefined;
    this.byAgent.set(hello.agent_id, conn);
    const away = this.departed.get(hello.agent_id);
    if (away !== undefined) {
      clearTimeout(away.timer);
      this.departed.delete(hello.agent_id);
      conn.log.info({ awayMs: this.options.now() - away.since }, 'agent back within the disconnect grace; its placements kept');
    }
    conn.log.info({ labels: hello.labels, gpus: hello.gpu_devices.length, first }, 'agent hello');
    this.send(conn, { type: 'welcome', protocol_version: PROTOCOL_VERSION, heartbeat_interval_ms: this.options.heartbeatIntervalMs });
    this.reschedule();
  }

  /** Agents disconnected less than the grace ago, whose services are still placed on them. */
  departedAgents(): ReadonlyMap<string, DepartedAgent> {
    return this.departed;
  }

  private holdPlacements(hello: HelloFrame): void {
    const graceMs = this.options.disconnectGraceMs;
    if (graceMs <= 0 || this.closing) return;
    const since = this.options.now();
    const timer = setTimeout(() => {
      this.departed.delete(hello.agent_id);
      this.options.logger.warn({ agentId: hello.agent_id, graceMs }, 'agent did not come back within the disconnect grace; placing its services elsewhere');
      this.reschedule();
    }, graceMs);
    timer.unref();
    this.departed.set(hello.agent_id, { hello, since, until: since + graceMs, timer });
  }

  /** Recomputes placement and sends `services.sync` to every agent whose desired set changed. */
  private reschedule(): void {
    const connected = [...this.byAgent.values()].flatMap((c) => (c.hello === undefined ? [] : [c.hello]));
    const agents = [...connected, ...[...this.departed.values()].map((d) => d.hello)];
    const { placements, perAgent } = computeDesiredSets(this.options.store.list(), agents, this.placements, new Set(this.departed.keys()));
    this.placements = placements;
    for (const [agentId, services] of perAgent) {
      const conn = this.byAgent.get(agentId);
      if (conn === undefined) continue;
      const key = JSON.stringify(services);
      if (key === conn.lastSyncKey) continue;
      conn.lastSyncKey = key;
      this.revision += 1;
      this.send(conn, { type: 'services.sync', revision: this.revision, services: services.map((s) => ({ id: s.id, definition: { ...s.definition } })) });
      this.options.logger.info({ agentId, revision: this.revision, services: services.length }, 'services.sync sent');
    }
  }

  private async answerCredential(conn: Connection, frame: CredentialResolveFrame): Promise<void> {
    const agentId = conn.hello?.agent_id ?? '';
    const resolve = this.options.resolveCredential;
    let answer: { value: string; ttlMs?: number } | { code: string; message: string };
    try {
      answer = resolve === undefined
        ? { code: CredentialErrorCodes.UNAVAILABLE, message: 'this gateway has no credentials store' }
        : await resolve({ agentId, serviceId: frame.service_id, credentialId: frame.credential_id });
    } catch (err) {
      answer = { code: CredentialErrorCodes.UNAVAILABLE, message: `credentials store failed: ${(err as Error).message}` };
    }
    if ('value' in answer) {
      this.send(conn, { type: 'credential.resolved', request_id: frame.request_id, value: answer.value, ...(answer.ttlMs === undefined ? {} : { ttl_ms: answer.ttlMs }) });
    } else {
      conn.log.warn({ serviceId: frame.service_id, credentialId: frame.credential_id, code: answer.code, problem: answer.message }, 'credential.resolve refused');
      this.send(conn, { type: 'credential.resolved', request_id: frame.request_id, error: { code: answer.code, message: answer.message } });
    }
  }

  private pingAll(): void {
    for (const conn of this.all) {
      if (!conn.alive) {
        this.options.logger.warn({ conn: conn.id, agentId: conn.hello?.agent_id }, 'agent missed a pong: terminating');
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }

  private send(conn: Connection, frame: GatewayFrame): void {
    conn.transport.sendText(encodeFrame(frame));
  }

  private sendError(conn: Connection, code: string, message: string, inReplyTo: string | undefined): void {
    this.send(conn, { type: 'error', code, message, ...(inReplyTo === undefined ? {} : { in_reply_to: inReplyTo }) });
  }
}

function rawToBuffer(data: RawData): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return data;
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

function waitClosed(ws: WebSocket): Promise<void> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve();
  return new Promise((resolve) => ws.once('close', () => resolve()));
}
