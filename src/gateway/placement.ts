import type { ServiceType } from '../service-definition/types.js';

/** A connected agent as placement sees it. */
export interface PlacementAgent {
  agentId: string;
  labels: readonly string[];
  /** Healthy GPUs in the agent's inventory: what new replicas are placed by. */
  gpuCount: number;
  /**
   * Every GPU in the agent's inventory, healthy or not (default `gpuCount`). Replicas already
   * placed on the agent stay while they fit this: a GPU turning unhealthy stops new work from
   * landing on the host, it does not evict what runs there (the agent queues a replica whose GPU
   * failed until healthy ones are free, as the NVIDIA device plugin leaves running pods alone).
   */
  gpuTotal?: number;
  /** Disconnected, within its grace: keeps the replicas it had (per `previous`), takes no new ones. */
  holding?: boolean;
}

/** A deployed service to place. */
export interface PlacementRequest {
  serviceId: string;
  serviceType: ServiceType;
  requiredLabels: readonly string[];
  /** -1 = every GPU of a host (needs ≥ 1), 0 = none, N = N GPUs per replica. */
  gpuCount: number;
  replicaCount: number;
}

export interface Assignment {
  agentId: string;
  /** Replicas of the service this agent runs (1 for an external service). */
  replicas: number;
}

export interface ServicePlacement {
  serviceId: string;
  /** Sorted by agentId. Empty when no agent is eligible. */
  assignments: Assignment[];
  /** Why nothing is placed; undefined when placed. */
  reason: string | undefined;
}

/** Where each service ran before: preferred again while still eligible (no needless moves). */
export type PreviousPlacement = ReadonlyMap<string, readonly Assignment[]>;

/**
 * Decides which connected agents run how many replicas of each deployed service. Pure and
 * deterministic: same inputs, same output.
 *
 * - Eligible agent: its labels are a superset of `requiredLabels`, and for deployed services it
 *   has ≥ `gpuCount` healthy GPUs (≥ 1 for -1); to keep replicas it already runs, counting its
 *   unhealthy GPUs too. External services ignore GPUs and take one agent.
 * - Services are placed in the given order (callers pass oldest first). Replicas already on an
 *   eligible agent (per `previous`) stay there; the others go one by one to the eligible agent
 *   whose GPUs still fit the replica, then the least loaded (replicas placed so far), then the
 *   smallest agentId. When no GPUs fit anywhere the replica still goes to an eligible agent,
 *   which queues it (`pending`) until its GPUs free up.
 * - An agent marked `holding` (disconnected, within the gateway's grace) keeps what it had and is
 *   given nothing new.
 */
export function placeServices(
  requests: readonly PlacementRequest[],
  agents: readonly PlacementAgent[],
  previous: PreviousPlacement = new Map(),
): ServicePlacement[] {
  const load = new Map<string, number>(agents.map((a) => [a.agentId, 0]));
  const gpuUsed = new Map<string, number>(agents.map((a) => [a.agentId, 0]));
  const sortedAgents = [...agents].sort((a, b) => compareIds(a.agentId, b.agentId));

  return requests.map((req) => {
    const eligible = sortedAgents.filter((a) => isEligible(req, a));
    const kept = previous.get(req.serviceId)?.some((p) => sortedAgents.some((a) => a.agentId === p.agentId && isEligible(req, a, true))) ?? false;
    if (eligible.length === 0 && !kept) {
      return { serviceId: req.serviceId, assignments: [], reason: unplacedReason(req, sortedAgents.filter((a) => a.holding !== true)) };
    }
    const wanted = req.serviceType === 'external' ? 1 : Math.max(1, req.replicaCount);
    const perReplicaGpus = (agent: PlacementAgent): number =>
      req.serviceType === 'external' ? 0 : req.gpuCount === -1 ? agent.gpuCount : req.gpuCount;
    const counts = new Map<string, number>();
    let placed = 0;
    const take = (agent: PlacementAgent): void => {
      counts.set(agent.agentId, (counts.get(agent.agentId) ?? 0) + 1);
      load.set(agent.agentId, (load.get(agent.agentId) ?? 0) + 1);
      gpuUsed.set(agent.agentId, (gpuUsed.get(agent.agentId) ?? 0) + perReplicaGpus(agent));
      placed += 1;
    };

    const before = [...(previous.get(req.serviceId) ?? [])].sort((a, b) => compareIds(a.agentId, b.agentId));
    const keepers = sortedAgents.filter((a) => isEligible(req, a, true));
    for (const prev of before) {
      const agent = keepers.find((a) => a.agentId === prev.agentId);
      if (agent === undefined) continue;
      for (let i = 0; i < prev.replicas && placed < wanted; i++) take(agent);
    }

    const open = eligible.filter((a) => a.holding !== true);
    while (placed < wanted) {
      const fits = (a: PlacementAgent): boolean => a.gpuCount - (gpuUsed.get(a.agentId) ?? 0) >= perReplicaGpus(a);
      const best = [...open].sort((a, b) => {
        const fa = fits(a) ? 0 : 1;
        const fb = fits(b) ? 0 : 1;
        if (fa !== fb) return fa - fb;
        const la = load.get(a.agentId) ?? 0;
        const lb = load.get(b.agentId) ?? 0;
        if (la !== lb) return la - lb;
        return compareIds(a.agentId, b.agentId);
      })[0];
      if (best === undefined) break;
      take(best);
    }
    if (placed === 0) {
      return { serviceId: req.serviceId, assignments: [], reason: unplacedReason(req, sortedAgents.filter((a) => a.holding !== true)) };
    }

    const assignments = [...counts.entries()]
      .map(([agentId, replicas]) => ({ agentId, replicas }))
      .sort((a, b) => compareIds(a.agentId, b.agentId));
    return { serviceId: req.serviceId, assignments, reason: undefined };
  });
}

/** `keeping`: for replicas already on the agent, whose GPUs may have turned unhealthy since. */
function isEligible(req: PlacementRequest, agent: PlacementAgent, keeping = false): boolean {
  if (!hasLabels(agent, req.requiredLabels)) return false;
  if (req.serviceType === 'external') return true;
  const gpus = keeping ? Math.max(agent.gpuCount, agent.gpuTotal ?? agent.gpuCount) : agent.gpuCount;
  return gpus >= minGpus(req.gpuCount);
}

function hasLabels(agent: PlacementAgent, required: readonly string[]): boolean {
  return required.every((label) => agent.labels.includes(label));
}

function minGpus(gpuCount: number): number {
  return gpuCount === -1 ? 1 : Math.max(0, gpuCount);
}

/** A sentence naming what no connected agent offers. */
function unplacedReason(req: PlacementRequest, agents: readonly PlacementAgent[]): string {
  if (agents.length === 0) return 'no agent is connected';
  const labelled = agents.filter((a) => hasLabels(a, req.requiredLabels));
  const labels = `[${req.requiredLabels.join(', ')}]`;
  if (labelled.length === 0) return `no connected agent has labels ${labels}`;
  // Agents with unhealthy GPUs: the reason says the count is of healthy ones, and names them.
  const sick = labelled.filter((a) => (a.gpuTotal ?? a.gpuCount) > a.gpuCount);
  const healthy = sick.length > 0 ? 'healthy ' : '';
  const gpus = req.gpuCount === -1 ? `a ${healthy}GPU` : `${req.gpuCount} ${healthy}GPU${req.gpuCount === 1 ? '' : 's'}`;
  const withLabels = req.requiredLabels.length > 0 ? ` with labels ${labels}` : '';
  const note = sick.length > 0 ? `; unhealthy GPUs: ${sick.map((a) => `${a.agentId} ${(a.gpuTotal ?? a.gpuCount) - a.gpuCount} of ${a.gpuTotal ?? a.gpuCount}`).join(', ')}` : '';
  return `no connected agent${withLabels} has ${gpus} (gpu_count ${req.gpuCount})${note}`;
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
