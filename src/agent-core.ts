import type { DesiredService } from './service-definition/types.js';
import type { ReadyEndpoint, ServiceStatusReport } from './domain/status-types.js';
import type { ReplicaLogEntry, ServiceLogQuery } from './domain/log-entry.js';

/**
 * What the tunnel client (and the standalone services-dir source) needs from the agent: hand it the
 * full desired set, read and watch status, find ready replicas. The reconciler implements it.
 */
export interface AgentCore {
  /**
   * Replace the whole desired set. Idempotent: the same set twice changes nothing. `source`
   * names where it came from ('gateway', 'services-dir', 'disk') for logs.
   * The first call enables destructive actions (orphan removal).
   */
  applyDesired(services: DesiredService[], revision: number, source: string): void;
  /** Current status of every desired (or still stopping) service. */
  statusSnapshot(): ServiceStatusReport[];
  /** Called on every status change of a service; returns an unsubscribe function. */
  onStatusChange(listener: (report: ServiceStatusReport) => void): () => void;
  /** Ready replicas of a service, for the proxy. */
  readyEndpoints(serviceId: string): ReadyEndpoint[];
  /** The desired definition of a service, as last applied (the one holder of desired state). */
  desiredService(serviceId: string): DesiredService | undefined;
  /** Log entries of the service's replicas on this host (reconcile/replica-logs.ts); undefined: not held here. */
  replicaLogs(serviceId: string, query: ServiceLogQuery, signal: AbortSignal): AsyncIterable<ReplicaLogEntry> | undefined;
}
