import type { AgentCore } from '../../src/agent-core.js';
import type { ReadyEndpoint, ServiceStatusReport } from '../../src/domain/status-types.js';
import type { DesiredService } from '../../src/service-definition/types.js';
import type { ReplicaLogEntry, ServiceLogQuery } from '../../src/domain/log-entry.js';

export interface AppliedCall {
  services: DesiredService[];
  revision: number;
  source: string;
}

/** An AgentCore that records applyDesired calls and lets the test emit status changes. */
export class FakeAgentCore implements AgentCore {
  readonly applied: AppliedCall[] = [];
  private readonly reports = new Map<string, ServiceStatusReport>();
  private readonly listeners = new Set<(report: ServiceStatusReport) => void>();

  applyDesired(services: DesiredService[], revision: number, source: string): void {
    this.applied.push({ services, revision, source });
  }

  statusSnapshot(): ServiceStatusReport[] {
    return [...this.reports.values()];
  }

  onStatusChange(listener: (report: ServiceStatusReport) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  readyEndpoints(): ReadyEndpoint[] {
    return [];
  }

  desiredService(serviceId: string): DesiredService | undefined {
    return this.lastApplied()?.services.find((s) => s.id === serviceId);
  }

  /** Log entries per service id, served by replicaLogs (without follow: the list, then the end). */
  readonly logs = new Map<string, ReplicaLogEntry[]>();

  replicaLogs(serviceId: string, query: ServiceLogQuery): AsyncIterable<ReplicaLogEntry> | undefined {
    if (this.desiredService(serviceId) === undefined) return undefined;
    const entries = (this.logs.get(serviceId) ?? []).filter((e) => query.replica === undefined || e.replicaIndex === query.replica);
    return (async function* () {
      yield* entries;
    })();
  }

  /** The last desired set handed over, or undefined before the first. */
  lastApplied(): AppliedCall | undefined {
    return this.applied.at(-1);
  }

  /** Records a status change (a `stopped` report also drops the service from the snapshot). */
  emit(report: ServiceStatusReport): void {
    if (report.state === 'stopped') this.reports.delete(report.serviceId);
    else this.reports.set(report.serviceId, report);
    for (const listener of this.listeners) listener(report);
  }
}

export function statusReport(serviceId: string, slug: string, over: Partial<ServiceStatusReport> = {}): ServiceStatusReport {
  return {
    serviceId,
    slug,
    state: 'running',
    reason: undefined,
    desiredReplicas: 1,
    readyReplicas: 1,
    replicas: [
      { index: 0, phase: 'ready', reason: undefined, containerId: 'c0', gpuIds: [], restartCount: 0, pull: undefined, since: 1, specHash: 'h' },
    ],
    specHash: 'h',
    warnings: [],
    updatedAt: Date.now(),
    ...over,
  };
}

