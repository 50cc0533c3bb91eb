import type { RawData, WebSocket } from 'ws';
import { ProtocolErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import { encodeFrame, parseAgentFrame, type AgentFrame, type GatewayFrame, type HeartbeatFrame, type HelloFrame } from '../tunnel/protocol.js';
import { StreamMux } from '../tunnel/stream-mux.js';
import { WsTransport, type Corkable } from '../tunnel/ws-transport.js';
import type { AgentReport } from './service-status.js';

/** Frames a session hands to the hub: the ones that change more than the session itself. */
export interface SessionEvents {
  onHello(session: AgentSession, hello: HelloFrame): void;
  onCredentialResolve(session: AgentSession, frame: Extract<AgentFrame, { type: 'credential.resolve' }>): void;
}

/**
 * One agent's WebSocket on the gateway: its transport and stream multiplexer, what it said about
 * itself (hello, heartbeat) and its latest status reports. It parses every frame; status,
 * heartbeats and stream frames it applies itself, hello and credential requests go to the hub.
 *
 *   accepted ──hello──▶ identified (hub.byAgent) ──close──▶ gone
 *       └── anything but hello/error first: unexpected_frame (the frame is dropped)
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
  helloTimer: NodeJS.Timeout | undefined;
  readonly transport: WsTransport;
  readonly mux: StreamMux;
  log: Logger;

  constructor(
    readonly id: number,
    readonly ws: WebSocket,
    readonly remote: string,
    socket: Corkable,
    private readonly events: SessionEvents,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {
    this.transport = new WsTransport(ws, socket);
    this.mux = new StreamMux({ transport: this.transport });
    this.connectedAt = now();
    this.log = logger.child({ conn: id, remote });
  }

  get agentId(): string | undefined {
    return this.hello?.agent_id;
  }

  /** After a hello: log lines carry the agent id. */
  identify(hello: HelloFrame): void {
    this.hello = hello;
    this.lastSyncKey = undefined;
    this.log = this.logger.child({ conn: this.id, remote: this.remote, agentId: hello.agent_id });
  }

  send(frame: GatewayFrame): void {
    this.transport.sendText(encodeFrame(frame));
  }

  sendError(code: string, message: string, inReplyTo: string | undefined): void {
    this.send({ type: 'error', code, message, ...(inReplyTo === undefined ? {} : { in_reply_to: inReplyTo }) });
  }

  onMessage(data: RawData, isBinary: boolean): void {
    if (isBinary) {
      const problem = this.hello === undefined ? 'binary frame before hello: send hello first' : this.mux.handleData(rawToBuffer(data));
      if (problem !== undefined) this.sendError(this.hello === undefined ? ProtocolErrorCodes.UNEXPECTED_FRAME : ProtocolErrorCodes.INVALID_FRAME, problem, undefined);
      return;
    }
    const parsed = parseAgentFrame(rawToString(data));
    if (!parsed.ok) {
      this.log.warn({ code: parsed.code, problem: parsed.message }, 'invalid frame from agent');
      this.sendError(parsed.code, parsed.message, parsed.inReplyTo);
      return;
    }
    const frame = parsed.frame;
    if (frame.type !== 'hello' && frame.type !== 'error' && this.hello === undefined) {
      this.sendError(ProtocolErrorCodes.UNEXPECTED_FRAME, `${frame.type} before hello: send hello first`, frame.type);
      return;
    }
    this.onFrame(frame);
  }

  private onFrame(frame: AgentFrame): void {
    const now = this.now();
    const agentId = this.hello?.agent_id ?? '';
    switch (frame.type) {
      case 'hello':
        this.events.onHello(this, frame);
        return;
      case 'heartbeat':
        this.lastHeartbeat = now;
        this.heartbeat = frame;
        return;
      case 'service.status':
        if (frame.status.state === 'stopped') this.reports.delete(frame.status.serviceId);
        else this.reports.set(frame.status.serviceId, { agentId, report: frame.status, receivedAt: now });
        return;
      case 'status.snapshot':
        this.reports = new Map(frame.services.filter((r) => r.state !== 'stopped').map((r) => [r.serviceId, { agentId, report: r, receivedAt: now }]));
        return;
      case 'error':
        this.log.warn({ code: frame.code, problem: frame.message, inReplyTo: frame.in_reply_to, serviceId: frame.service_id }, 'agent reported an error');
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
