import { Agent, request } from 'undici';
import type { Logger } from '../log.js';
import type { ProbeView } from '../domain/replica-planner.js';

export interface ProbeTarget {
  containerId: string;
  /** StartedAt of the container: a new value (restart) resets the probe's history. */
  startedAt: string;
  host: string;
  port: number;
  path: string;
}

export interface ProberOptions {
  intervalMs: number;
  timeoutMs: number;
  failureThreshold: number;
  logger: Logger;
  /** Called when a container's readiness flips or it reaches the failure threshold. */
  onChange: (containerId: string) => void;
}

interface ProbeEntry {
  target: ProbeTarget;
  view: ProbeView;
  timer: NodeJS.Timeout | undefined;
  abort: AbortController;
  attempts: number;
}

/**
 * Agent-side HTTP health probes: GET http://<host>:<port><path> every interval; 2xx (and 3xx, as
 * the kubelet does) is success. One loop per container, started by `ensure` and ended by `forget`.
 * The first probe runs at once.
 */
export class HttpProber {
  private readonly entries = new Map<string, ProbeEntry>();
  private readonly dispatcher: Agent;

  constructor(private readonly options: ProberOptions) {
    // Short keep-alive: probes must not hold sockets to containers that go away.
    this.dispatcher = new Agent({ keepAliveTimeout: 1_000, connections: 4 });
  }

  view(containerId: string): ProbeView | undefined {
    return this.entries.get(containerId)?.view;
  }

  views(): ReadonlyMap<string, ProbeView> {
    return new Map([...this.entries].map(([id, e]) => [id, e.view]));
  }

  /** Idempotent: the same target keeps its loop; a changed one (restart, new address) starts over. */
  ensure(target: ProbeTarget): void {
    const existing = this.entries.get(target.containerId);
    if (existing) {
      const t = existing.target;
      if (t.startedAt === target.startedAt && t.host === target.host && t.port === target.port && t.path === target.path) return;
      this.forget(target.containerId);
    }
    const entry: ProbeEntry = {
      target,
      view: { startedAt: target.startedAt, ready: false, everReady: false, consecutiveFailures: 0, lastError: undefined },
      timer: undefined,
      abort: new AbortController(),
      attempts: 0,
    };
    this.entries.set(target.containerId, entry);
    void this.tick(entry);
  }

  forget(containerId: string): void {
    const entry = this.entries.get(containerId);
    if (!entry) return;
    clearTimeout(entry.timer);
    entry.abort.abort();
    this.entries.delete(containerId);
  }

  /** Forgets every container not in `keep`. */
  retain(keep: ReadonlySet<string>, filter: (containerId: string) => boolean = () => true): void {
    for (const id of [...this.entries.keys()]) if (filter(id) && !keep.has(id)) this.forget(id);
  }

  async close(): Promise<void> {
    for (const id of [...this.entries.keys()]) this.forget(id);
    await this.dispatcher.close();
  }

  private async tick(entry: ProbeEntry): Promise<void> {
    const { target } = entry;
    const error = await this.probeOnce(target, entry.abort.signal);
    if (entry.abort.signal.aborted || this.entries.get(target.containerId) !== entry) return;
    const before = entry.view;
    entry.view = error
      ? { ...before, ready: before.ready && before.consecutiveFailures + 1 < this.options.failureThreshold, consecutiveFailures: before.consecutiveFailures + 1, lastError: error }
      : { ...before, ready: true, everReady: true, consecutiveFailures: 0, lastError: undefined };
    const changed =
      before.ready !== entry.view.ready ||
      (entry.view.everReady && entry.view.consecutiveFailures === this.options.failureThreshold);
    if (changed) this.options.onChange(target.containerId);
    entry.attempts += 1;
    entry.timer = setTimeout(() => void this.tick(entry), this.nextDelay(entry));
    entry.timer.unref?.();
  }

  /**
   * Until a container is first ready it is probed quickly (100 ms, slowing by 50 ms per attempt up
   * to the interval): a fast service becomes ready within ~100 ms of listening, not an interval
   * later, while a slow model server soon settles at the normal interval.
   */
  private nextDelay(entry: ProbeEntry): number {
    if (entry.view.everReady) return this.options.intervalMs;
    return Math.min(this.options.intervalMs, 100 + 50 * entry.attempts);
  }

  /** undefined on success, else a short reason ("HTTP 503", "ECONNREFUSED", "timeout after 3000ms"). */
  private async probeOnce(t: ProbeTarget, signal: AbortSignal): Promise<string | undefined> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    try {
      const res = await request(`http://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}${t.path}`, {
        method: 'GET',
        dispatcher: this.dispatcher,
        signal: AbortSignal.any([signal, timeout]),
        headers: { 'user-agent': 'cyberun-agent-probe' },
      });
      await res.body.dump();
      return res.statusCode >= 200 && res.statusCode < 400 ? undefined : `HTTP ${res.statusCode}`;
    } catch (err) {
      if (timeout.aborted) return `timeout after ${this.options.timeoutMs}ms`;
      const e = err as NodeJS.ErrnoException;
      return e.code ?? e.message;
    }
  }
}
