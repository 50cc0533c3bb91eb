import { WebSocket, type RawData } from 'ws';
import { fullJitterBackoff } from '../domain/backoff.js';
import { AgentError, ErrorCodes, errorMessage, ProtocolErrorCodes } from '../errors.js';
import { buildHello, nodePlatformArch } from './agent-frames.js';
import { applySync } from './apply-sync.js';
import { describeDialError, dialGateway } from './gateway-dial.js';
import { rawToBuffer, rawToString } from './raw-data.js';
import { StatusReporter } from './status-reporter.js';
import type { TunnelState } from './tunnel-state.js';
import type { StreamEndpoint } from './stream-endpoint.js';
import type { TunnelClientOptions } from './tunnel-client-options.js';
import { WsTransport, type Corkable } from './ws-transport.js';
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, encodeFrame, parseGatewayFrame, type AgentFrame, type GatewayFrame, type HelloFrame } from './protocol.js';

export type { TunnelClientOptions } from './tunnel-client-options.js';

/**
 * The agent's side of the tunnel. Dials the gateway (gateway-dial.ts), says hello, applies every
 * `services.sync` to the core, reports status and heartbeats (status-reporter.ts) and hands
 * proxied streams to its StreamEndpoint. Reconnects forever (a wrong key included: operators fix
 * keys without restarting) until `close()`. A lost tunnel never touches workloads.
 */
export class TunnelClient {
  private ws: WebSocket | undefined;
  /** Every frame of the open connection goes through it (write batching, ws-transport.ts). */
  private transport: WsTransport | undefined;
  private state: TunnelState = { kind: 'closed' };
  private readonly listeners = new Set<(state: TunnelState) => void>();
  private readonly reporter: StatusReporter;
  private attempt = 0;
  private started = false;
  private stopped = false;
  private failureReason: string | undefined;
  private welcomed = false;
  /**
   * The protocol version our hello says: the newest, until a gateway refuses it as unsupported;
   * then the oldest this build speaks, for the rest of the process (docs/protocol.md, Versioning).
   */
  private helloVersion = PROTOCOL_VERSION;
  private alive = true;
  private timers: NodeJS.Timeout[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  /** Proxied streams of the current connection (docs/protocol.md, "Proxied streams"). */
  private readonly streams: StreamEndpoint;

  constructor(private readonly options: TunnelClientOptions) {
    this.streams = options.streams;
    this.reporter = new StatusReporter({ core: options.core, inventory: options.inventory, snapshotIntervalMs: options.snapshotIntervalMs ?? 30_000 });
  }

  /** Starts connecting. Idempotent. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.unsubscribe = this.options.core.onStatusChange((report) => this.reporter.report(report));
    this.connect();
  }

  /** Listens to state changes; returns an unsubscribe function. */
  onState(listener: (state: TunnelState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  currentState(): TunnelState {
    return this.state;
  }

  /**
   * Stops reconnecting and closes the tunnel cleanly (1000) after open proxy streams drained
   * (bounded by proxy.drainTimeoutMs). Workloads are untouched. Idempotent.
   */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.streams.drain();
    this.unsubscribe?.();
    clearTimeout(this.retryTimer);
    this.clearTimers();
    const ws = this.ws;
    if (ws !== undefined && ws.readyState !== ws.CLOSED) {
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      if (ws.readyState === ws.CONNECTING) ws.terminate();
      else ws.close(1000, 'agent shutting down');
      const force = setTimeout(() => ws.terminate(), 2000);
      await closed;
      clearTimeout(force);
    }
    await this.streams.close();
    this.setState({ kind: 'closed' });
  }

  private connect(): void {
    if (this.stopped) return;
    const { options } = this;
    this.failureReason = undefined;
    this.welcomed = false;
    this.alive = true;
    this.setState({ kind: 'connecting', attempt: this.attempt });
    const ws = dialGateway({
      url: options.url,
      agentKey: options.agentKey,
      ...(options.caPem === undefined ? {} : { caPem: options.caPem }),
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 15_000,
      onRefused: (reason) => {
        this.failureReason = reason;
      },
    });
    this.ws = ws;
    let socket: Corkable | undefined;
    ws.on('upgrade', (res) => {
      socket = res.socket;
    });
    ws.on('open', () => {
      this.transport = new WsTransport(ws, socket);
      this.streams.attach(this.transport);
      this.onOpen(ws);
    });
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('pong', () => {
      this.alive = true;
    });
    ws.on('error', (err) => {
      this.failureReason ??= describeDialError(err, options.url);
    });
    ws.on('close', (code, reason) => this.onClose(ws, code, reason.toString()));
  }

  private onOpen(ws: WebSocket): void {
    const { options } = this;
    options.logger.info({ url: options.url }, 'tunnel open: sending hello');
    this.send(this.hello());
    this.every(options.pingIntervalMs ?? 20_000, () => {
      if (!this.alive) {
        this.failureReason ??= 'gateway missed a pong: connection presumed dead';
        ws.terminate();
        return;
      }
      this.alive = false;
      ws.ping();
    });
  }

  /**
   * Sends a new hello on the open connection, so the gateway places by the current labels and
   * GPUs (after a SIGHUP changed `agent_labels`, or the inventory changed). Nothing else about the
   * connection changes: streams in flight carry on. Also before the welcome (the gateway answers
   * each hello; a second welcome is ignored). While not connected it does nothing: the next
   * connection's hello carries them.
   */
  refreshHello(why: string): void {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    this.options.logger.info({ why }, 'sending a new hello');
    this.send(this.hello());
  }

  private hello(): HelloFrame {
    const { options } = this;
    return buildHello({
      agentId: options.agentId,
      agentVersion: options.agentVersion,
      labels: options.labels(),
      inventory: options.inventory(),
      fallbackPlatformArch: nodePlatformArch(process.platform, process.arch),
      snapshot: options.core.statusSnapshot(),
      protocolVersion: this.helloVersion,
    });
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    const log = this.options.logger;
    if (isBinary) {
      const problem = this.streams.onBinary(rawToBuffer(data));
      if (problem !== undefined) this.send({ type: 'error', code: ProtocolErrorCodes.INVALID_FRAME, message: problem });
      return;
    }
    // Read in place: Buffer.from(data) copied every text frame (a stream.open per request) first.
    const parsed = parseGatewayFrame(rawToString(data));
    if (!parsed.ok) {
      log.warn({ code: parsed.code, problem: parsed.message }, 'invalid frame from gateway');
      this.send({ type: 'error', code: parsed.code, message: parsed.message, ...(parsed.inReplyTo === undefined ? {} : { in_reply_to: parsed.inReplyTo }) });
      return;
    }
    this.onFrame(parsed.frame);
  }

  private onFrame(frame: GatewayFrame): void {
    const log = this.options.logger;
    switch (frame.type) {
      case 'welcome':
        this.streams.onWelcome(Math.min(frame.protocol_version, this.helloVersion));
        this.onWelcome(frame.heartbeat_interval_ms);
        return;
      case 'services.sync': {
        const result = applySync(frame, (id) => this.options.core.desiredService(id));
        for (const error of result.errors) this.send(error);
        try {
          this.options.core.applyDesired(result.desired, frame.revision, 'gateway');
          log.info({ revision: frame.revision, services: result.desired.length, invalid: result.errors.length }, 'services.sync applied');
        } catch (err) {
          log.error({ err, revision: frame.revision }, 'applying services.sync failed');
          this.send({ type: 'error', code: ProtocolErrorCodes.APPLY_FAILED, message: `revision ${frame.revision} could not be applied: ${errorMessage(err)}`, in_reply_to: 'services.sync' });
        }
        return;
      }
      case 'error':
        log.warn({ code: frame.code, problem: frame.message, inReplyTo: frame.in_reply_to }, 'gateway reported an error');
        // The gateway explains a refusal in an error frame right before it closes: that is the
        // reason the tunnel state shows (close reasons are limited to 123 bytes).
        if (REFUSAL_CODES.has(frame.code)) this.failureReason = `gateway refused the connection (${frame.code}): ${frame.message}`;
        if (frame.code === ProtocolErrorCodes.UNSUPPORTED_VERSION && this.helloVersion > MIN_PROTOCOL_VERSION) {
          this.helloVersion = MIN_PROTOCOL_VERSION;
          log.warn({ version: MIN_PROTOCOL_VERSION }, `the gateway does not speak protocol ${PROTOCOL_VERSION}: reconnecting with ${MIN_PROTOCOL_VERSION} (no response frames; upgrade the gateway to get them)`);
        }
        return;
      case 'stream.open':
        this.streams.onOpen(frame);
        return;
      case 'stream.window':
      case 'stream.end':
      case 'stream.reset':
        this.streams.onStreamFrame(frame);
        return;
      case 'credential.resolved':
        this.streams.onCredential(frame);
        return;
    }
  }

  private onWelcome(heartbeatIntervalMs: number): void {
    const { options } = this;
    if (this.welcomed) return;
    this.welcomed = true;
    this.attempt = 0;
    this.setState({ kind: 'connected', since: Date.now() });
    options.logger.info({ heartbeatIntervalMs }, 'tunnel connected');
    this.reporter.online((frame) => this.send(frame), heartbeatIntervalMs);
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    this.clearTimers();
    this.reporter.offline();
    this.ws = undefined;
    this.transport = undefined;
    this.streams.detach(`connection closed (code ${code})`);
    this.welcomed = false;
    if (this.stopped) return;
    const why = this.failureReason ?? `connection closed by the gateway (code ${code}${reason === '' ? '' : `: ${reason}`})`;
    const { baseMs, capMs } = this.options.reconnect ?? { baseMs: 1000, capMs: 60_000 };
    const delay = fullJitterBackoff(this.attempt, baseMs, capMs, this.options.random ?? Math.random);
    this.attempt += 1;
    const err = new AgentError(ErrorCodes.TUNNEL, why, { retryable: true });
    this.options.logger.warn({ err, retryInMs: delay, attempt: this.attempt }, 'tunnel disconnected');
    this.setState({ kind: 'disconnected', reason: why, retryInMs: delay, attempt: this.attempt });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private send(frame: AgentFrame): void {
    this.transport?.sendText(encodeFrame(frame));
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }

  private clearTimers(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  private setState(state: TunnelState): void {
    this.state = state;
    for (const listener of this.listeners) {
      try {
        listener(state);
      } catch (err) {
        this.options.logger.error({ err }, 'tunnel state listener failed');
      }
    }
  }
}

/** `error` codes the gateway sends right before closing the connection (docs/protocol.md). */
const REFUSAL_CODES = new Set<string>([ProtocolErrorCodes.UNSUPPORTED_VERSION, ProtocolErrorCodes.AGENT_ID_REFUSED, ProtocolErrorCodes.AGENT_ID_IN_USE, ProtocolErrorCodes.TOO_MANY_INVALID_FRAMES]);

