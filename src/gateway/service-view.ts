import type { ServicePlacement } from './placement.js';
import { deriveServiceStatus, type AgentReport, type DepartedAgent, type ServiceStatus } from './service-status.js';
import type { StoredService } from './service-store.js';

/** What the views need from the agent hub. */
export interface StatusSource {
  placementOf(serviceId: string): ServicePlacement | undefined;
  reportsFor(serviceId: string): AgentReport[];
  departedAgents(): ReadonlyMap<string, DepartedAgent>;
}

/**
 * `status_detail` of the runtime get: why the service is in its status, and per agent what runs
 * there. Documented in docs/gateway.md.
 */
export interface StatusDetail {
  reason: string | null;
  desired_replicas: number;
  ready_replicas: number;
  agents: AgentStatusDetail[];
}

export interface AgentStatusDetail {
  agent_id: string;
  /** Replicas placed on this agent (0: it is still stopping a service no longer placed there). */
  assigned_replicas: number;
  /** The agent's own view: deploying/running/stopping/failed; null before its first report. */
  state: string | null;
  reason: string | null;
  ready_replicas: number;
  replicas: ReplicaDetail[];
}

export interface ReplicaDetail {
  index: number;
  phase: string;
  reason: string | null;
  restart_count: number;
  gpu_ids: string[];
  pull: { current_bytes: number; total_bytes: number; eta_seconds: number | null } | null;
}

/** `reports`: the service's reports when the caller already has them (the proxy needs them too). */
export function statusOf(service: StoredService, source: StatusSource, reports = source.reportsFor(service.id)): { status: ServiceStatus; reason: string | undefined } {
  return deriveServiceStatus({
    lifecycle: service.lifecycle,
    serviceType: service.definition.service_type,
    deployedAt: service.deployedAt,
    placement: service.lifecycle === 'deployed' ? source.placementOf(service.id) : undefined,
    reports,
    departed: source.departedAgents(),
  });
}

/** The definition plus id, timestamps, service_type and service_status (management get/list). */
export function serviceRecord(service: StoredService, source: StatusSource, status = statusOf(service, source).status): Record<string, unknown> {
  return {
    id: service.id,
    ...service.definition,
    service_type: service.definition.service_type,
    created_at: service.createdAt,
    updated_at: service.updatedAt,
    service_status: status,
  };
}

/** The runtime view: serviceRecord plus `status_detail`. */
export function runtimeRecord(service: StoredService, source: StatusSource): Record<string, unknown> {
  const reports = source.reportsFor(service.id);
  const { status, reason } = statusOf(service, source, reports);
  const placement = service.lifecycle === 'deployed' ? source.placementOf(service.id) : undefined;
  const current = reports.filter((r) => service.deployedAt === undefined || r.receivedAt >= service.deployedAt);
  const agentIds = new Set([...(placement?.assignments.map((a) => a.agentId) ?? []), ...reports.map((r) => r.agentId)]);
  const agents: AgentStatusDetail[] = [...agentIds].sort().map((agentId) => {
    const assigned = placement?.assignments.find((a) => a.agentId === agentId)?.replicas ?? 0;
    const r = (assigned > 0 ? current : reports).find((x) => x.agentId === agentId)?.report;
    return {
      agent_id: agentId,
      assigned_replicas: assigned,
      state: r?.state ?? null,
      reason: r?.reason ?? null,
      ready_replicas: r?.readyReplicas ?? 0,
      warnings: r?.warnings ?? [],
      replicas: (r?.replicas ?? []).map((x) => ({
        index: x.index,
        phase: x.phase,
        reason: x.reason ?? null,
        restart_count: x.restartCount,
        gpu_ids: x.gpuIds,
        pull: x.pull === undefined ? null : { current_bytes: x.pull.currentBytes, total_bytes: x.pull.totalBytes, eta_seconds: x.pull.etaSeconds ?? null },
      })),
    };
  });
  const detail: StatusDetail = {
    reason: reason ?? null,
    desired_replicas: service.lifecycle === 'deployed' ? service.definition.replica_count : 0,
    ready_replicas: agents.filter((a) => a.assigned_replicas > 0).reduce((sum, a) => sum + a.ready_replicas, 0),
    agents,
  };
  return { ...serviceRecord(service, source, status), status_detail: detail };
}
