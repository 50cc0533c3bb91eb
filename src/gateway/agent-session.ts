import type { RawData, WebSocket } from 'ws';
import { CredentialErrorCodes, ProtocolErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import type { ServiceStatusReport } from '../domain/status-types.js';
import {
  CLOSE_TOO_MANY_INVALID,
  MAX_CONTROL_FRAME_BYTES,
  encodeFrame,
  parseAgentFrame,
  type AgentFrame,
  type GatewayFrame,
  type HeartbeatFrame,
  type HelloFrame,
} from '../tunnel/protocol.js';
import { rawLength, rawToBuffer, rawToString } from '../tunnel/raw-data.js';
import { StreamMux } from '../tunnel/stream-mux.js';
import { WsTransport, type Corkable } from '../tunnel/ws-transport.js';
import { LogThrottle, WindowCounter, type ConnectionLimits } from './connection-limits.js';
import type { AgentReport } from './service-status.js';

/** Frames a session hands to the hub: the ones that change more than the session itself. */
export interface SessionEvents {
  onHello(session: AgentSession, hello: HelloFrame): void;
  onCredentialResolve(session: AgentSession, frame: Extract<AgentFrame, { type: 'credential.resolve' }>): void;
  /** Whether the service still exists (reports about deleted services are dropped). */
  knowsService(serviceId: string): boolean;
}

/**
 * One agent's WebSocket on the gateway: its transport and stream multiplexer, what it said about
 * itself (hello, heartbeat), its latest status reports, and what it may cost (connection-limits.ts).
 * It parses every frame; status, heartbeats and stream frames it applies itself, hello and
 * credential requests go to the hub.
 *
 *   accepted ──hello──▶ claiming ──granted──▶ identified (hub.byAgent) ──close──▶ gone
 *       │                  └──refused (4004, 4005)──▶ closed
 *       └── anything but hello/error first: unexpected_frame (the frame is dropped)
 *   any state ──more than maxInvalidFrames invalid frames in a window──▶ closed (4006)
 *
 * Reports are believed only for services the gateway put in this connection's `services.sync`
 * (placed on it now, or removed from it and being stopped): so their number is bounded by what
 * the gateway gave this agent, and an agent cannot keep another agent's service alive in status.
 */
export class AgentSession {
  hello: HelloFrame | undefined;
  readonly connectedAt: number;
  lastHeartbeat: number | undefined;
  heartbeat: HeartbeatFrame | undefined;
  /** Latest report per service id. */
  reports = new Map<string, AgentReport>();
  /** The last `services.sync` content sent, to send only changes. */
  lastSyncKey: string | undefined;
  /** Cleared by every ping, set by its pong. */
  alive = true;
  /** A hello is waiting for the hub's decision (agent-claims.ts); the latest one while it waits. */
  claiming = false;
  pendingHello: HelloFrame | undefined;
  /** Closed (or replaced) by the gateway: frames still arriving are dropped. */
  ending = false;
  helloTimer: NodeJS.Timeout | undefined;
  readonly transport: WsTransport;
  readonly mux: StreamMux;
  log: Logger;
  /** Warnings caused by what the agent sends, rate-limited per connection. */
  readonly warnings: LogThrottle;
  private readonly invalid: WindowCounter;
  private readonly hellos: WindowCounter;
  /** Services sent to this agent in a services.sync on this connection. */
  private readonly synced = new Set<string>();
  private pendingCredentials = 0;
  private sendBufferHighSince: number | undefined;

  constructor(
    readonly id: number,
    readonly ws: WebSocket,
    readonly remote: string,
    socket: Corkable,
    /** The agent id the connection's key is issued for; undefined for a shared key. */
    readonly boundAgentId: string | undefined,
    private readonly events: SessionEvents,
    private readonly logger: Logger,
    private readonly limits: ConnectionLimits,
    private readonly now: () => number,
  ) {
    this.transport = new WsTransport(ws, socket);
    this.mux = new StreamMux({ transport: this.transport });
    this.connectedAt = now();
    this.log = logger.child({ conn: id, remote });
    this.warnings = new LogThrottle(() => this.log, limits.logLinesPerWindow, limits.invalidWindowMs, now);
    this.invalid = new WindowCounter(limits.maxInvalidFrames, limits.invalidWindowMs);
    this.hellos = new WindowCounter(limits.maxHellos, limits.helloWindowMs);
  }

  get agentId(): string | undefined {
    return this.hello?.agent_id;
  }

  /** After a granted hello: log lines carry the agent id. */
  identify(hello: HelloFrame): void {
    this.hello = hello;
    this.lastSyncKey = undefined;
    this.log = this.logger.child({ conn: this.id, remote: this.remote, agentId: hello.agent_id });
  }

  send(frame: GatewayFrame): void {
    this.transport.sendText(encodeFrame(frame));
  }

  /**
   * Sends a reply to an agent frame (error, credential.resolved), unless more than
   * `replyHighWaterBytes` wait unsent: a peer that does not read gets no more replies queued.
   */
  reply(frame: GatewayFrame): void {
    if (this.ws.bufferedAmount > this.limits.replyHighWaterBytes) {
      this.warnings.warn({ type: frame.type, buffered: this.ws.bufferedAmount }, 'reply to agent dropped: its send buffer is full');
      return;
    }
    this.send(frame);
  }

  sendError(code: string, message: string, inReplyTo: string | undefined): void {
    this.reply({ type: 'error', code, message, ...(inReplyTo === undefined ? {} : { in_reply_to: inReplyTo }) });
  }

  /**
   * The agent sent something wrong: logged (rate-limited), answered with an `error` frame unless
   * `answered`, and counted; past the limit the connection is closed (4006). False once closed.
   */
  refuse(code: string, message: string, inReplyTo: string | undefined, answered = false): boolean {
    if (this.ending) return false;
    this.warnings.warn({ code, problem: message.slice(0, 300) }, 'invalid frame from agent');
    if (!this.invalid.hit(this.now())) {
      const limit = `${this.limits.maxInvalidFrames} invalid frames within ${this.limits.invalidWindowMs / 1000} s`;
      this.log.warn({ limit }, 'agent connection closed: too many invalid frames');
      this.sendError(ProtocolErrorCodes.TOO_MANY_INVALID_FRAMES, `more than ${limit}: closing the connection`, undefined);
      this.end(CLOSE_TOO_MANY_INVALID, 'too many invalid frames');
      return false;
    }
    if (!answered) this.sendError(code, message, inReplyTo);
    return true;
  }

  /** Closes the connection from the gateway's side; later frames are dropped. */
  end(code: number, reason: string): void {
    if (this.ending) return;
    this.ending = true;
    clearTimeout(this.helloTimer);
    this.warnings.flush();
    this.ws.close(code, reason);
    // A peer that does not complete the close handshake is cut off.
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }

  /** The services of a services.sync just sent: reports about them are believed from now on. */
  noteSynced(serviceIds: readonly string[]): void {
    for (const id of this.synced) if (!this.events.knowsService(id)) this.synced.delete(id);
    for (const id of serviceIds) this.synced.add(id);
  }

  /** Called every second: false when the send buffer stayed above its limit for the grace period. */
  sendBufferOk(now: number): boolean {
    if (this.ws.bufferedAmount <= this.limits.sendBufferLimitBytes) {
      this.sendBufferHighSince = undefined;
      return true;
    }
    this.sendBufferHighSince ??= now;
    return now - this.sendBufferHighSince < this.limits.sendBufferGraceMs;
  }

  /** One credential lookup starts; false (answered already) when too many are in progress. */
  credentialStarted(requestId: string): boolean {
    if (this.pendingCredentials >= this.limits.maxPendingCredentials) {
      this.reply({ type: 'credential.resolved', request_id: requestId, error: { code: CredentialErrorCodes.UNAVAILABLE, message: `more than ${this.limits.maxPendingCredentials} credential requests in progress on this connection` } });
      this.refuse(ProtocolErrorCodes.RATE_LIMITED, 'too many credential requests in progress', 'credential.resolve', true);
      return false;
    }
    this.pendingCredentials += 1;
    return true;
  }

  credentialDone(): void {
    this.pendingCredentials -= 1;
  }

  onMessage(data: RawData, isBinary: boolean): void {
    if (this.ending) return;
    if (isBinary) {
      if (this.hello === undefined) {
        this.refuse(ProtocolErrorCodes.UNEXPECTED_FRAME, 'binary frame before hello: send hello first', undefined);
        return;
      }
      const problem = this.mux.handleData(rawToBuffer(data));
      if (problem !== undefined) this.refuse(ProtocolErrorCodes.INVALID_FRAME, problem, undefined);
      return;
    }
    const size = rawLength(data);
    if (size > MAX_CONTROL_FRAME_BYTES) {
      this.refuse(ProtocolErrorCodes.FRAME_TOO_LARGE, `text frame of ${size} bytes exceeds the control frame limit of ${MAX_CONTROL_FRAME_BYTES} bytes; it was not read`, undefined);
      return;
    }
    const parsed = parseAgentFrame(rawToString(data));
    if (!parsed.ok) {
      this.refuse(parsed.code, parsed.message, parsed.inReplyTo);
      return;
    }
    const frame = parsed.frame;
    if (frame.type !== 'hello' && frame.type !== 'error' && this.hello === undefined) {
      this.refuse(ProtocolErrorCodes.UNEXPECTED_FRAME, `${frame.type} before hello (or before the gateway's welcome): send hello first`, frame.type);
      return;
    }
    this.onFrame(frame);
  }

  private onFrame(frame: AgentFrame): void {
    switch (frame.type) {
      case 'hello':
        if (!this.hellos.hit(this.now())) {
          this.refuse(ProtocolErrorCodes.RATE_LIMITED, `more than ${this.limits.maxHellos} hello frames within ${this.limits.helloWindowMs / 1000} s; this one is ignored`, 'hello');
          return;
        }
        this.events.onHello(this, frame);
        return;
      case 'heartbeat':
        this.lastHeartbeat = this.now();
        this.heartbeat = frame;
        return;
      case 'service.status':
        this.onReports([frame.status], false);
        return;
      case 'status.snapshot':
        this.onReports(frame.services, true);
        return;
      case 'error':
        this.warnings.warn({ code: frame.code, problem: frame.message.slice(0, 300), inReplyTo: frame.in_reply_to, serviceId: frame.service_id }, 'agent reported an error');
        return;
      case 'stream.response':
      case 'stream.window':
      case 'stream.end':
      case 'stream.reset':
        this.mux.handleFrame(frame);
        return;
      case 'credential.resolve':
        this.events.onCredentialResolve(this, frame);
        return;
    }
  }

  /** Applies reports about services given to this agent; refuses the others (`not_placed`). */
  private onReports(reports: readonly ServiceStatusReport[], snapshot: boolean): void {
    const now = this.now();
    const agentId = this.hello?.agent_id ?? '';
    const refused: string[] = [];
    if (snapshot) this.reports = new Map();
    for (const report of reports) {
      if (!this.synced.has(report.serviceId) || !this.events.knowsService(report.serviceId)) {
        refused.push(report.serviceId);
        continue;
      }
      if (report.state === 'stopped') this.reports.delete(report.serviceId);
      else this.reports.set(report.serviceId, { agentId, report, receivedAt: now });
    }
    if (refused.length > 0) {
      const shown = refused.slice(0, 3).map((id) => id.slice(0, 64)).join(', ');
      this.refuse(
        ProtocolErrorCodes.NOT_PLACED,
        `status for ${refused.length} service${refused.length === 1 ? '' : 's'} not given to this agent ignored (${shown}${refused.length > 3 ? ', …' : ''})`,
        snapshot ? 'status.snapshot' : 'service.status',
      );
    }
  }
}
