import type { ReplicaStatus, ServiceState } from './status-types.js';

/**
 * Aggregates replica phases into the service state the platform shows. Pure.
 *
 * - removing (no longer desired): `stopping` while any container remains, then `stopped`;
 * - any desired replica `failed` or `rejected`: `failed`;
 * - every desired replica `ready` and nothing of an old spec left: `running`;
 * - otherwise `deploying` (pending, pulling, starting, rolling, backing off).
 */
export function aggregateServiceState(replicas: readonly ReplicaStatus[], desiredReplicas: number, removing: boolean): ServiceState {
  if (removing) return replicas.length > 0 ? 'stopping' : 'stopped';
  const desired = replicas.filter((r) => r.index < desiredReplicas && r.phase !== 'stopping');
  if (desired.some((r) => r.phase === 'failed' || r.phase === 'rejected')) return 'failed';
  const ready = desired.filter((r) => r.phase === 'ready').length;
  const leftovers = replicas.some((r) => r.phase === 'stopping');
  return ready >= desiredReplicas && !leftovers ? 'running' : 'deploying';
}

/** The first reason worth showing at service level: a failed or waiting replica's. */
export function serviceReason(replicas: readonly ReplicaStatus[]): string | undefined {
  const order = ['failed', 'rejected', 'pending', 'backoff', 'crashed', 'unhealthy', 'pulling', 'starting'];
  for (const phase of order) {
    const r = replicas.find((x) => x.phase === phase && x.reason);
    if (r) return `replica ${r.index}: ${r.reason}`;
  }
  return undefined;
}
