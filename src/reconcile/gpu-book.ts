import type { GpuDevice } from '../host/types.js';
import type { EnvVar } from '../spec/types.js';
import type { ObservedContainer } from '../runtime/container-runtime.js';
import { Labels } from '../runtime/labels.js';
import { allocateGpus, gpuEnvironment, type AllocationVerdict, type GpuClaim } from '../domain/gpu-allocator.js';

/**
 * The agent's one table of GPU claims, shared by all service workers. Claims come from the
 * containers each worker observes (so the table is rebuilt from labels after a restart) plus
 * in-flight reservations made between allocation and container creation. All methods are
 * synchronous, so an allocation and its reservation happen without an await in between: two
 * workers can never be handed the same GPU.
 */
export class GpuBook {
  private readonly observed = new Map<string, Map<string, GpuClaim>>(); // serviceId → containerId → claim
  private readonly reserved = new Map<string, GpuClaim>(); // `${serviceId}/${index}` → claim
  /** GPUs a replica index held last, so that a recreated replica gets the same ones back. */
  private readonly lastHeld = new Map<string, string[]>();

  constructor(
    private readonly gpus: () => GpuDevice[],
    /** Called when GPUs were released: pending replicas elsewhere may now fit. */
    private readonly onRelease: () => void,
  ) {}

  /** Replaces the claims of one service with those of its observed containers. */
  observe(serviceId: string, containers: readonly ObservedContainer[]): void {
    const before = this.claimCount(serviceId);
    const map = new Map<string, GpuClaim>();
    for (const c of containers) {
      const gpuIds = this.idsOf(c);
      if (gpuIds.length === 0) continue;
      const replicaIndex = Number(c.labels[Labels.REPLICA]);
      map.set(c.id, { serviceId, serviceSlug: c.labels[Labels.SERVICE_SLUG] ?? serviceId, replicaIndex, gpuIds });
      this.lastHeld.set(`${serviceId}/${replicaIndex}`, gpuIds);
    }
    if (map.size > 0) this.observed.set(serviceId, map);
    else this.observed.delete(serviceId);
    if (this.claimCount(serviceId) < before) this.onRelease();
  }

  reserve(serviceId: string, serviceSlug: string, replicaIndex: number, gpuCount: number): AllocationVerdict {
    const verdict = allocateGpus(this.gpus(), this.claims(), {
      serviceId,
      serviceSlug,
      replicaIndex,
      gpuCount,
      previous: this.lastHeld.get(`${serviceId}/${replicaIndex}`),
    });
    if (verdict.kind === 'allocated' && verdict.gpuIds.length > 0) {
      this.reserved.set(`${serviceId}/${replicaIndex}`, { serviceId, serviceSlug, replicaIndex, gpuIds: verdict.gpuIds });
    }
    return verdict;
  }

  /** The reservation became a container. */
  bind(serviceId: string, replicaIndex: number, containerId: string): void {
    const key = `${serviceId}/${replicaIndex}`;
    const claim = this.reserved.get(key);
    if (!claim) return;
    const map = this.observed.get(serviceId) ?? new Map<string, GpuClaim>();
    map.set(containerId, claim);
    this.observed.set(serviceId, map);
    this.lastHeld.set(key, claim.gpuIds);
    this.reserved.delete(key);
  }

  unreserve(serviceId: string, replicaIndex: number): void {
    if (this.reserved.delete(`${serviceId}/${replicaIndex}`)) this.onRelease();
  }

  release(containerId: string): void {
    for (const [serviceId, map] of this.observed) {
      if (map.delete(containerId)) {
        if (map.size === 0) this.observed.delete(serviceId);
        this.onRelease();
        return;
      }
    }
  }

  /** Every claim: observed containers and in-flight reservations. */
  claims(): GpuClaim[] {
    return [...[...this.observed.values()].flatMap((m) => [...m.values()]), ...this.reserved.values()];
  }

  freeCount(): number {
    const held = new Set(this.claims().flatMap((c) => c.gpuIds));
    return this.gpus().filter((g) => !held.has(g.id)).length;
  }

  /** Those of `ids` that the inventory no longer lists (a GPU fell off the bus, a driver reset). */
  missing(ids: readonly string[]): string[] {
    if (ids.length === 0) return [];
    const present = new Set(this.gpus().map((g) => g.id));
    return ids.filter((id) => !present.has(id));
  }

  idsOf(c: ObservedContainer): string[] {
    const label = c.labels[Labels.GPUS];
    if (label !== undefined) return label === '' ? [] : label.split(',');
    return c.gpuDeviceIds;
  }

  /** The container's env: env_config minus GPU variables, plus the enforced GPU visibility. */
  environment(envConfig: EnvVar[], gpuIds: string[]): string[] {
    return gpuEnvironment(envConfig, gpuIds).env;
  }

  private claimCount(serviceId: string): number {
    return this.observed.get(serviceId)?.size ?? 0;
  }
}
