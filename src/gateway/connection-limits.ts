import type { Logger } from '../log.js';

/**
 * What one agent connection may cost the gateway (docs/security.md, "Limits"). Every number is a
 * default of `startGateway({ connectionLimits })`.
 */
export interface ConnectionLimits {
  /** Invalid frames tolerated within `invalidWindowMs`; one more closes the connection (4006). */
  maxInvalidFrames: number;
  invalidWindowMs: number;
  /** Log lines per connection and window about frames the agent got wrong; the rest are counted. */
  logLinesPerWindow: number;
  /** Hellos per connection within `helloWindowMs`; more are answered `rate_limited`. */
  maxHellos: number;
  helloWindowMs: number;
  /** Credential lookups in progress per connection; more are answered at once with an error. */
  maxPendingCredentials: number;
  /** Replies to agent frames (error, credential.resolved) are dropped while more than this is unsent. */
  replyHighWaterBytes: number;
  /** A connection whose unsent bytes stay above this for `sendBufferGraceMs` is terminated. */
  sendBufferLimitBytes: number;
  sendBufferGraceMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxInvalidFrames: 100,
  invalidWindowMs: 60_000,
  logLinesPerWindow: 10,
  maxHellos: 10,
  helloWindowMs: 60_000,
  maxPendingCredentials: 16,
  replyHighWaterBytes: 1024 * 1024,
  sendBufferLimitBytes: 16 * 1024 * 1024,
  sendBufferGraceMs: 10_000,
};

/**
 * Counts events in fixed windows: the first event opens a window of `windowMs`, and the count
 * starts again with the first event after it. Pure (the caller passes the time); O(1) memory.
 */
export class WindowCounter {
  private windowStart = Number.NEGATIVE_INFINITY;
  private count = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Records one event at `now`; false once the window holds more than `limit` events. */
  hit(now: number): boolean {
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.count = 0;
    }
    this.count += 1;
    return this.count <= this.limit;
  }
}

/**
 * Log lines caused by what a peer did, at most `perWindow` per `windowMs`; the rest are counted
 * and summed up in one line when the next window opens. A hostile peer can therefore not turn its
 * requests or frames into log volume.
 */
export class LogThrottle {
  private windowStart = Number.NEGATIVE_INFINITY;
  private logged = 0;
  private suppressed = 0;

  constructor(
    private readonly logger: () => Logger,
    private readonly perWindow: number,
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {}

  warn(fields: Record<string, unknown>, message: string): void {
    this.write('warn', fields, message);
  }

  /** For failures of the gateway itself that a client can trigger (a handler that threw). */
  error(fields: Record<string, unknown>, message: string): void {
    this.write('error', fields, message);
  }

  private write(level: 'warn' | 'error', fields: Record<string, unknown>, message: string): void {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      this.flush();
      this.windowStart = now;
    }
    if (this.logged < this.perWindow) {
      this.logged += 1;
      this.logger()[level](fields, message);
    } else {
      this.suppressed += 1;
    }
  }

  /** Writes the summary of suppressed lines, if any (also when the connection ends). */
  flush(): void {
    if (this.suppressed > 0) this.logger().warn({ suppressed: this.suppressed, windowMs: this.windowMs }, 'more warnings of this kind were not logged (rate limit)');
    this.logged = 0;
    this.suppressed = 0;
  }
}
