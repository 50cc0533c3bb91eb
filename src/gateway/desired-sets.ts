import type { DesiredService } from '../service-definition/types.js';
import { healthyGpuCount, type HelloFrame } from '../tunnel/protocol.js';
import { placeServices, type Assignment, type ServicePlacement } from './placement.js';
import type { StoredService } from './service-store.js';

export interface DesiredSets {
  /** Placement of every deployed service, by service id. */
  placements: Map<string, ServicePlacement>;
  /** The full `services.sync` content for every connected agent (possibly empty), by agent id. */
  perAgent: Map<string, DesiredService[]>;
}

/**
 * What every connected agent should run. Pure.
 *
 * Previous placements are preferred so replicas do not move needlessly; for a service without one
 * (after a gateway restart) the agents whose hello lists it are preferred. Each agent receives the
 * definition with `replica_count` set to its share; external services are sent unchanged.
 */
export function computeDesiredSets(
  services: readonly StoredService[],
  agents: readonly HelloFrame[],
  previousPlacements: ReadonlyMap<string, ServicePlacement>,
  /** Agents in their disconnect grace: they keep their services and get no new ones. */
  holding: ReadonlySet<string> = new Set(),
): DesiredSets {
  const deployed = services.filter((s) => s.lifecycle === 'deployed');
  const previous = new Map<string, Assignment[]>();
  for (const s of deployed) {
    const kept = previousPlacements.get(s.id)?.assignments;
    if (kept !== undefined && kept.length > 0) {
      previous.set(s.id, [...kept]);
      continue;
    }
    const holders = agents.filter((h) => h.service_ids.includes(s.id));
    if (holders.length > 0) previous.set(s.id, holders.map((h) => ({ agentId: h.agent_id, replicas: s.definition.replica_count })));
  }
  const placed = placeServices(
    deployed.map((s) => ({
      serviceId: s.id,
      serviceType: s.definition.service_type,
      requiredLabels: s.definition.required_labels,
      gpuCount: s.definition.gpu_count,
      replicaCount: s.definition.replica_count,
    })),
    agents.map((h) => ({ agentId: h.agent_id, labels: h.labels, gpuCount: healthyGpuCount(h), gpuTotal: h.gpu_devices.length, holding: holding.has(h.agent_id) })),
    previous,
  );
  const placements = new Map(placed.map((p) => [p.serviceId, p]));
  const perAgent = new Map<string, DesiredService[]>(agents.map((h) => [h.agent_id, []]));
  for (const s of deployed) {
    for (const a of placements.get(s.id)?.assignments ?? []) {
      const definition = s.definition.service_type === 'external' ? s.definition : { ...s.definition, replica_count: a.replicas };
      perAgent.get(a.agentId)?.push({ id: s.id, definition, ...(s.deployedAt === undefined ? {} : { deployedAt: s.deployedAt }) });
    }
  }
  return { placements, perAgent };
}
