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
  // One pass without intermediate collections: this runs on every proxied request.
  let chosen: string | undefined;
  let chosenLoad = 0;
  for (const { agentId } of input.placement?.assignments ?? []) {
    const report = reportOf(input.reports, agentId);
    if (report === undefined) continue;
    if (!(external ? report.state === 'running' : report.readyReplicas > 0 && report.state !== 'stopping')) continue;
    const load = input.load(agentId);
    if (chosen === undefined || load < chosenLoad || (load === chosenLoad && agentId < chosen)) {
      chosen = agentId;
      chosenLoad = load;
    }
  }
  if (chosen !== undefined && (input.status === 'running' || input.status === 'deploying')) return { ok: true, agentId: chosen };
  const why = input.reason ?? (chosen === undefined ? 'no replica is ready yet' : `the service is ${input.status}`);
  return { ok: false, status: 503, message: `service "${slug}" is ${input.status} and cannot take requests now: ${why}`, retryAfterS: 5 };
}

/** The report of `agentId` among the service's reports (one per connected agent). */
function reportOf(reports: readonly AgentReport[], agentId: string): AgentReport['report'] | undefined {
  for (const r of reports) if (r.agentId === agentId) return r.report;
  return undefined;
}
