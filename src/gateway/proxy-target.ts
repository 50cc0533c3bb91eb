import type { ServicePlacement } from './placement.js';
import type { AgentReport, ServiceStatus } from './service-status.js';
import type { StoredService } from './service-store.js';

export type ProxyTarget =
  | { ok: true; agentId: string }
  | { ok: false; status: number; message: string; retryAfterS?: number };

export interface ProxyTargetInput {
  service: StoredService;
  status: ServiceStatus;
  reason: string | undefined;
  placement: ServicePlacement | undefined;
  /** Latest report per connected agent about this service. */
  reports: readonly AgentReport[];
  /** Streams open to each agent (load). */
  load: (agentId: string) => number;
}

/**
 * Which agent serves a proxied request. Pure.
 *
 * Proxy and invoke require a deployed service that is `running` — or `deploying` while an agent it
 * is placed on already reports a ready replica (a rolling update, or a scale-up, keeps serving).
 * Among placed agents reporting ready replicas (deployed) or `running` (external), the one with
 * the fewest open streams wins, then the smallest agent id. The agent re-checks readiness itself.
 */
export function chooseProxyTarget(input: ProxyTargetInput): ProxyTarget {
  const slug = input.service.definition.service_slug;
  if (input.service.lifecycle !== 'deployed') {
    return { ok: false, status: 409, message: `service "${slug}" is ${input.status}: proxy and invoke require a running service (deploy it first)` };
  }
  const external = input.service.definition.service_type === 'external';
  const byAgent = new Map(input.reports.map((r) => [r.agentId, r.report]));
  const ready = (input.placement?.assignments ?? [])
    .map((a) => a.agentId)
    .filter((agentId) => {
      const report = byAgent.get(agentId);
      if (report === undefined) return false;
      return external ? report.state === 'running' : report.readyReplicas > 0 && report.state !== 'stopping';
    })
    .sort((a, b) => input.load(a) - input.load(b) || (a < b ? -1 : a > b ? 1 : 0));
  const chosen = ready[0];
  if (chosen !== undefined && (input.status === 'running' || input.status === 'deploying')) return { ok: true, agentId: chosen };
  const why = input.reason ?? (chosen === undefined ? 'no replica is ready yet' : `the service is ${input.status}`);
  return { ok: false, status: 503, message: `service "${slug}" is ${input.status} and cannot take requests now: ${why}`, retryAfterS: 5 };
}
