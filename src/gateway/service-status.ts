import type { ServiceStatusReport } from '../domain/status-types.js';
import type { ServiceType } from '../service-definition/types.js';
import type { ServicePlacement } from './placement.js';
import type { Lifecycle } from './service-store.js';

/** Cyberun's `service_status`. */
export type ServiceStatus = 'created' | 'deploying' | 'running' | 'failed' | 'stopping' | 'stopped';

/** One connected agent's latest report about one service, stamped with the gateway's clock. */
export interface AgentReport {
  agentId: string;
  report: ServiceStatusReport;
  /** Epoch ms (gateway clock) the report arrived. */
  receivedAt: number;
}

/** An agent whose tunnel dropped, while its placements are held for it (epoch ms, gateway clock). */
export interface DepartedAgent {
  /** When it disconnected. */
  since: number;
  /** When its services are placed elsewhere unless it reconnects. */
  until: number;
}

export interface StatusInput {
  lifecycle: Lifecycle;
  serviceType: ServiceType;
  /** Epoch ms of the last deploy; reports received before it are about an older deployment. */
  deployedAt: number | undefined;
  /** Current placement; undefined when the service is not deployed. */
  placement: ServicePlacement | undefined;
  /** Latest reports from connected agents (any agent, placed or not). */
  reports: readonly AgentReport[];
  /** Agents whose tunnel dropped, while their placements are held. */
  departed?: ReadonlyMap<string, DepartedAgent>;
}

export interface DerivedStatus {
  status: ServiceStatus;
  /** For people: why it is not running (yet). */
  reason: string | undefined;
}

/**
 * Derives `service_status` from the stored lifecycle and the agents' reports. Pure.
 *
 *   created ──deploy──▶ deploying ──every placed replica ready──▶ running
 *                          │  ▲                                     │
 *                          ▼  └────────(a replica not ready)────────┘
 *                        failed (an agent placed to run it reports it failed)
 *   (deployed) ──undeploy──▶ stopping ──no agent reports it any more──▶ stopped
 *
 * A report in state `stopped` counts as "not reported". Only agents the service is placed on
 * count while deployed; after undeploy every connected agent does.
 */
export function deriveServiceStatus(input: StatusInput): DerivedStatus {
  switch (input.lifecycle) {
    case 'created':
      return { status: 'created', reason: undefined };
    case 'undeployed': {
      const still = input.reports.filter((r) => r.report.state !== 'stopped');
      if (still.length === 0) return { status: 'stopped', reason: undefined };
      const agents = still.map((r) => r.agentId).sort().join(', ');
      return { status: 'stopping', reason: `still running on agent${still.length === 1 ? '' : 's'} ${agents}` };
    }
    case 'deployed':
      return deriveDeployed(input);
  }
}

function deriveDeployed(input: StatusInput): DerivedStatus {
  const placement = input.placement;
  if (placement === undefined || placement.assignments.length === 0) {
    return { status: 'deploying', reason: placement?.reason ?? 'waiting for placement' };
  }
  // Runs for every proxied request: the reports are looked up in place (a handful per service),
  // no filtered copy and no map.
  for (const a of placement.assignments) {
    const r = currentReport(input, a.agentId);
    if (r?.report.state === 'failed') {
      return { status: 'failed', reason: `agent ${a.agentId}: ${r.report.reason ?? 'service failed'}` };
    }
  }
  for (const a of placement.assignments) {
    const r = currentReport(input, a.agentId);
    if (r === undefined) {
      const away = input.departed?.get(a.agentId);
      if (away !== undefined) {
        return { status: 'deploying', reason: `agent ${a.agentId} disconnected at ${iso(away.since)}; its replicas go to other agents at ${iso(away.until)} unless it reconnects` };
      }
      return { status: 'deploying', reason: `waiting for agent ${a.agentId} to report` };
    }
    const ready =
      r.report.state === 'running' && (input.serviceType === 'external' || r.report.readyReplicas >= a.replicas);
    if (!ready) {
      const detail = r.report.reason ?? `${r.report.readyReplicas}/${a.replicas} replicas ready`;
      return { status: 'deploying', reason: `agent ${a.agentId}: ${detail}` };
    }
  }
  return { status: 'running', reason: undefined };
}

/** The agent's latest report received since the last deploy (older ones are about an earlier deployment). */
function currentReport(input: StatusInput, agentId: string): AgentReport | undefined {
  const { reports, deployedAt } = input;
  for (let i = reports.length - 1; i >= 0; i--) {
    const r = reports[i] as AgentReport;
    if (r.agentId === agentId && (deployedAt === undefined || r.receivedAt >= deployedAt)) return r;
  }
  return undefined;
}

const iso = (ms: number): string => new Date(ms).toISOString();
