import type { AgentCore } from '../agent-core.js';
import type { ServiceStatusReport } from '../domain/status-types.js';
import { buildHeartbeat, type HostSummary } from './agent-frames.js';
import type { AgentFrame } from './protocol.js';

export interface StatusReporterOptions {
  core: Pick<AgentCore, 'statusSnapshot'>;
  inventory: () => HostSummary | undefined;
  /** Period of the full status snapshot. */
  snapshotIntervalMs: number;
}

/**
 * What the agent tells the gateway about its services while the tunnel is up, and what it keeps
 * while it is down:
 *
 *   offline: report(r) keeps only the latest report per service (bounded by the number of services)
 *   online(send): flushes those, then a full snapshot and a heartbeat, then both on their periods;
 *                 report(r) is sent at once
 */
export class StatusReporter {
  private readonly pending = new Map<string, ServiceStatusReport>();
  private send: ((frame: AgentFrame) => void) | undefined;
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly options: StatusReporterOptions) {}

  online(send: (frame: AgentFrame) => void, heartbeatIntervalMs: number): void {
    this.offline();
    this.send = send;
    for (const report of this.pending.values()) send({ type: 'service.status', status: report });
    this.pending.clear();
    this.sendSnapshot();
    this.sendHeartbeat();
    this.every(heartbeatIntervalMs, () => this.sendHeartbeat());
    this.every(this.options.snapshotIntervalMs, () => this.sendSnapshot());
  }

  offline(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.send = undefined;
  }

  report(report: ServiceStatusReport): void {
    if (this.send !== undefined) this.send({ type: 'service.status', status: report });
    else this.pending.set(report.serviceId, report);
  }

  private sendSnapshot(): void {
    this.send?.({ type: 'status.snapshot', services: this.options.core.statusSnapshot() });
  }

  private sendHeartbeat(): void {
    this.send?.(buildHeartbeat(this.options.core.statusSnapshot(), this.options.inventory()));
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }
}
