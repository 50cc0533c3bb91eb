import type { ConnectedAgent } from './agent-hub.js';
import { healthyGpuCount } from '../tunnel/protocol.js';
import { gpuDeviceRecord, type AgentRecord } from './agent-view.js';
import { ok, paginate, parsePage, type HttpResult } from './http-io.js';
import type { ServicePlacement } from './placement.js';
import type { Route, RouteContext } from './router.js';

export interface AgentRoutesDeps {
  agents(): ConnectedAgent[];
  placementOf(serviceId: string): ServicePlacement | undefined;
  /** Deployed services' ids with their last deploy time. */
  deployedServices(): { id: string; deployedAt: number | undefined }[];
  heartbeatIntervalMs: number;
  now: () => number;
}

export type AgentStatus = 'idle' | 'busy' | 'syncing' | 'unhealthy';

/**
 * Cyberun's agent_status for one agent. Pure.
 * - unhealthy: no heartbeat for 3 intervals (counted from connect before the first one);
 * - syncing: a service placed on it is not running there yet, or one it still runs is stopping;
 * - busy: it runs placed services; idle: nothing placed.
 * (`tunnel` is not produced by the local gateway.)
 */
export function agentStatus(input: {
  now: number;
  heartbeatIntervalMs: number;
  connectedAt: number;
  lastHeartbeat: number | undefined;
  placed: { replicas: number; state: string | undefined; ready: number }[];
  unplacedReports: number;
}): AgentStatus {
  const since = input.lastHeartbeat ?? input.connectedAt;
  if (input.now - since > 3 * input.heartbeatIntervalMs) return 'unhealthy';
  const settling = input.placed.some((p) => p.state !== 'running' || p.ready < p.replicas);
  if (settling || input.unplacedReports > 0) return 'syncing';
  return input.placed.length > 0 ? 'busy' : 'idle';
}

/**
 * GET /api/v1/agents and its runtime alias GET /api/v1/r/agents (one answer for both): connected
 * agents only, ordered by agent_id, paginated, as `{agent_list, page_meta}` with VRAM in bytes.
 */
export function agentRoutes(deps: AgentRoutesDeps): Route[] {
  const list = (ctx: RouteContext): HttpResult => {
    const page = parsePage(ctx.query);
    if (!page.ok) return page.result;
    const now = deps.now();
    const deployed = deps.deployedServices();
    const rows = deps
      .agents()
      .sort((a, b) => (a.hello.agent_id < b.hello.agent_id ? -1 : a.hello.agent_id > b.hello.agent_id ? 1 : 0))
      .map((agent): AgentRecord => {
        const id = agent.hello.agent_id;
        const placed = deployed.flatMap((s) => {
          const replicas = deps.placementOf(s.id)?.assignments.find((a) => a.agentId === id)?.replicas;
          if (replicas === undefined) return [];
          const r = agent.reports.get(s.id);
          const current = r !== undefined && (s.deployedAt === undefined || r.receivedAt >= s.deployedAt) ? r.report : undefined;
          return [{ replicas, state: current?.state, ready: current?.readyReplicas ?? 0 }];
        });
        const placedIds = new Set(deployed.filter((s) => deps.placementOf(s.id)?.assignments.some((a) => a.agentId === id)).map((s) => s.id));
        const unplacedReports = [...agent.reports.keys()].filter((sid) => !placedIds.has(sid)).length;
        const hb = agent.heartbeat;
        return {
          agent_id: id,
          agent_status: agentStatus({
            now,
            heartbeatIntervalMs: deps.heartbeatIntervalMs,
            connectedAt: agent.connectedAt,
            lastHeartbeat: agent.lastHeartbeat,
            placed,
            unplacedReports,
          }),
          agent_labels: agent.hello.labels,
          last_heartbeat: agent.lastHeartbeat === undefined ? null : new Date(agent.lastHeartbeat).toISOString(),
          agent_version: agent.hello.agent_version,
          gpu_capacity: hb?.gpu_capacity ?? healthyGpuCount(agent.hello),
          running_count: hb?.running_count ?? 0,
          platform_arch: agent.hello.platform_arch,
          connected_at: new Date(agent.connectedAt).toISOString(),
          system_stats: { gpu_devices: (hb?.gpu_devices ?? agent.hello.gpu_devices).map(gpuDeviceRecord) },
        };
      });
    return ok(paginate('agent_list', rows, page.page));
  };
  return [
    { method: 'GET', pattern: '/api/v1/agents', handler: list },
    { method: 'GET', pattern: '/api/v1/r/agents', handler: list },
  ];
}
