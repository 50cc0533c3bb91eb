import type { GpuClaim } from '../domain/gpu-allocator.js';
import type { PullStatus, ReplicaPhase, ServiceState, ServiceStatusReport } from '../domain/status-types.js';
import type { GpuDevice } from '../domain/gpu-device.js';
import type { TunnelState } from '../tunnel/tunnel-state.js';

/** Usage of the engine's data root as image GC last measured it (src/reconcile/image-gc.ts). */
export interface DiskStatus {
  path: string;
  usedBytes: number;
  totalBytes: number;
  usedPercent: number;
  measuredAt: number;
}

/**
 * The JSON document `GET /status` answers and `cyberun-agent status --json` prints. Versioned by
 * `format`; fields are only ever added. Carries no secrets: no env values, no keys, no credentials.
 */
export interface AdminStatus {
  format: 1;
  agentId: string;
  version: string;
  /** Epoch ms when this document was made. */
  now: number;
  /** Epoch ms the agent started. */
  startedAt: number;
  /** Last desired-state revision applied; -1 before the first. */
  desiredRevision: number;
  /** `{ kind: 'none' }` when the agent runs without a gateway (standalone). */
  tunnel: TunnelState | { kind: 'none' };
  labels: string[];
  /** `unhealthy`: why no new replica gets the GPU (GPU health, docs/engine.md); null while healthy. */
  gpus: Array<{ id: string; model: string; heldBy: { serviceId: string; slug: string; replica: number } | null; unhealthy: string | null }>;
  services: AdminServiceStatus[];
  /** Usage of the filesystem holding the engine's data root (image GC); null before the first measurement or where it cannot be measured. */
  disk: DiskStatus | null;
}

export interface AdminServiceStatus {
  serviceId: string;
  slug: string;
  state: ServiceState;
  reason: string | null;
  desiredReplicas: number;
  readyReplicas: number;
  /** What the agent ignores or changes in the definition. */
  warnings: string[];
  replicas: AdminReplicaStatus[];
}

export interface AdminReplicaStatus {
  index: number;
  phase: ReplicaPhase;
  /** The replica's reason, which is also its health detail (probe failures, exit codes, pull). */
  reason: string | null;
  /** Short (12-char) container id, as `docker ps` shows it. */
  containerId: string | null;
  gpuIds: string[];
  restarts: number;
  pull: PullStatus | null;
  /** Epoch ms the replica entered its phase. */
  since: number;
  /** Seconds in the current phase. */
  ageSeconds: number;
}

export interface StatusViewInput {
  agentId: string;
  version: string;
  now: number;
  startedAt: number;
  desiredRevision: number;
  tunnel: TunnelState | undefined;
  labels: string[];
  gpus: GpuDevice[];
  claims: GpuClaim[];
  services: ServiceStatusReport[];
  disk?: DiskStatus | undefined;
}

/** Builds the status document. Pure; services sorted by slug, replicas by index. */
export function buildStatusView(input: StatusViewInput): AdminStatus {
  const holders = new Map<string, { serviceId: string; slug: string; replica: number }>();
  for (const c of input.claims) for (const id of c.gpuIds) holders.set(id, { serviceId: c.serviceId, slug: c.serviceSlug, replica: c.replicaIndex });
  return {
    format: 1,
    agentId: input.agentId,
    version: input.version,
    now: input.now,
    startedAt: input.startedAt,
    desiredRevision: input.desiredRevision,
    tunnel: input.tunnel ?? { kind: 'none' },
    labels: [...input.labels],
    gpus: input.gpus.map((g) => ({ id: g.id, model: g.model, heldBy: holders.get(g.id) ?? null, unhealthy: g.unhealthy ?? null })),
    disk: input.disk ?? null,
    services: [...input.services]
      .sort((a, b) => compare(a.slug, b.slug) || compare(a.serviceId, b.serviceId))
      .map((s) => ({
        serviceId: s.serviceId,
        slug: s.slug,
        state: s.state,
        reason: s.reason ?? null,
        desiredReplicas: s.desiredReplicas,
        readyReplicas: s.readyReplicas,
        warnings: s.warnings,
        replicas: [...s.replicas]
          .sort((a, b) => a.index - b.index)
          .map((r) => ({
            index: r.index,
            phase: r.phase,
            reason: r.reason ?? null,
            containerId: r.containerId?.slice(0, 12) ?? null,
            gpuIds: [...r.gpuIds],
            restarts: r.restartCount,
            pull: r.pull ?? null,
            since: r.since,
            ageSeconds: Math.max(0, Math.floor((input.now - r.since) / 1000)),
          })),
      })),
  };
}

/** Code-unit order: slugs and ids are ASCII, and localeCompare would page in ICU data (~MBs of RSS). */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
