import type { ServiceDefinition } from '../service-definition/types.js';
import type { ReplicaStatus, ServiceStatusReport } from './status-types.js';
import { aggregateServiceState, serviceReason } from './service-state.js';
import { definitionWarnings } from './service-warnings.js';

/**
 * A service's status report from its replicas' statuses, as the reconciler publishes it: `since` kept
 * for replicas whose phase did not change, state and reason aggregated, warnings of the definition.
 * `desired` undefined: the service is no longer desired (its replicas are going). Pure.
 */
export function serviceReport(
  serviceId: string,
  desired: { definition: ServiceDefinition; specHash: string } | undefined,
  prev: ServiceStatusReport | undefined,
  replicas: readonly ReplicaStatus[],
  now: number,
): ServiceStatusReport {
  const withSince = replicas.map((r) => {
    const before = prev?.replicas.find((p) => p.index === r.index && p.containerId === r.containerId);
    return before && before.phase === r.phase ? { ...r, since: before.since } : { ...r, since: now };
  });
  const definition = desired?.definition;
  const desiredReplicas = definition?.service_type === 'deployed' ? definition.replica_count : 0;
  return {
    serviceId,
    slug: definition?.service_slug ?? prev?.slug ?? serviceId,
    state: definition?.service_type === 'external' ? 'running' : aggregateServiceState(withSince, desiredReplicas, !desired),
    reason: serviceReason(withSince),
    desiredReplicas,
    readyReplicas: withSince.filter((r) => r.phase === 'ready' && r.index < desiredReplicas).length,
    replicas: withSince,
    specHash: desired?.specHash ?? prev?.specHash ?? '',
    warnings: definition === undefined ? [] : definitionWarnings(definition),
    updatedAt: now,
  };
}

/** Whether two reports say the same, apart from when (updatedAt, since). */
export function sameReport(a: ServiceStatusReport, b: ServiceStatusReport): boolean {
  const strip = (r: ServiceStatusReport) => JSON.stringify({ ...r, updatedAt: 0, replicas: r.replicas.map((x) => ({ ...x, since: 0 })) });
  return strip(a) === strip(b);
}
