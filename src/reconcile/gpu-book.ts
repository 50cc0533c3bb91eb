import type { GpuDevice } from '../domain/gpu-device.js';
import type { EnvVar } from '../service-definition/types.js';
import type { ObservedContainer } from '../domain/observed-container.js';
import { Labels } from '../domain/ownership-labels.js';
import { allocateGpus, claimsFromContainers, gpuEnvironment, restartVerdict, unhealthyHeld, type AllocationVerdict, type GpuClaim, type RestartVerdict } from '../domain/gpu-allocator.js';

/** What the book keeps of a container: enough for `claimsFromContainers`. */
type Holder = Pick<ObservedContainer, 'labels' | 'gpuDeviceIds'>;

/**
 * The agent's one table of GPU claims, shared by all service workers. Claims are derived (by the
 * pure `claimsFromContainers`) from the containers each worker observes, so the table is rebuilt
 * from labels after a restart, plus in-flight reservations made between allocation and container
 * creation. All methods are synchronous, so an allocation and its reservation happen without an
 * await in between: two workers can never be handed the same GPU.
 */
export class GpuBook {
  private readonly observed = new Map<string, Map<string, Holder>>(); // serviceId → containerId → container
  private readonly reserved = new Map<string, GpuClaim>(); // `${serviceId}/${index}` → claim
  /** GPUs a replica index held last, so that a recreated replica gets the same ones back. */
  private readonly lastHeld = new Map<string, string[]>();

  constructor(
    private readonly gpus: () => GpuDevice[],
    /** Called when GPUs were released: pending replicas elsewhere may now fit. */
    private readonly onRelease: () => void,
  ) {}

  /** Replaces what the book knows of one service with its observed containers. */
  observe(serviceId: string, containers: readonly ObservedContainer[]): void {
    const before = this.heldBy(serviceId);
    const map = new Map(containers.map((c) => [c.id, { labels: c.labels, gpuDeviceIds: c.gpuDeviceIds }] as const));
    this.observed.set(serviceId, map);
    for (const claim of claimsFromContainers([...map.values()])) this.lastHeld.set(`${serviceId}/${claim.replicaIndex}`, claim.gpuIds);
    if (map.size === 0) this.observed.delete(serviceId);
    if (this.heldBy(serviceId) < before) this.onRelease();
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

  /** The reservation became a container (until the next observe of its service lists it). */
  bind(serviceId: string, replicaIndex: number, containerId: string): void {
    const key = `${serviceId}/${replicaIndex}`;
    const claim = this.reserved.get(key);
    if (!claim) return;
    const map = this.observed.get(serviceId) ?? new Map<string, Holder>();
    map.set(containerId, {
      labels: { [Labels.SERVICE_ID]: serviceId, [Labels.SERVICE_SLUG]: claim.serviceSlug, [Labels.REPLICA]: String(replicaIndex), [Labels.GPUS]: claim.gpuIds.join(',') },
      gpuDeviceIds: claim.gpuIds,
    });
    this.observed.set(serviceId, map);
    this.lastHeld.set(key, claim.gpuIds);
    this.reserved.delete(key);
  }

  unreserve(serviceId: string, replicaIndex: number): void {
    if (this.reserved.delete(`${serviceId}/${replicaIndex}`)) this.onRelease();
  }

  release(containerId: string): void {
    for (const [serviceId, map] of this.observed) {
      const held = map.get(containerId);
      if (!held) continue;
      map.delete(containerId);
      if (map.size === 0) this.observed.delete(serviceId);
      if (this.idsOf(held).length > 0) this.onRelease();
      return;
    }
  }

  /** Every claim: observed containers and in-flight reservations. */
  claims(): GpuClaim[] {
    return [...claimsFromContainers([...this.observed.values()].flatMap((m) => [...m.values()])), ...this.reserved.values()];
  }

  /** Healthy GPUs no claim holds. */
  freeCount(): number {
    const held = new Set(this.claims().flatMap((c) => c.gpuIds));
    return this.gpus().filter((g) => !held.has(g.id) && g.unhealthy === undefined).length;
  }

  /** Whether a stopped replica holding `held` may start again as it is (see `restartVerdict`). */
  restartVerdict(serviceId: string, serviceSlug: string, replicaIndex: number, gpuCount: number, held: readonly string[]): RestartVerdict {
    return restartVerdict(this.gpus(), this.claims(), { serviceId, serviceSlug, replicaIndex, gpuCount }, held);
  }

  /**
   * What is wrong with the GPUs `ids` now, for a replica's reason: unhealthy ones with why, and
   * ones the inventory does not have at all. undefined when nothing is.
   */
  faults(ids: readonly string[]): string | undefined {
    const sick = unhealthyHeld(ids, this.gpus()).map((u) => `GPU ${u.id} is unhealthy (${u.reason})`);
    const lost = this.missing(ids);
    const all = [...sick, ...(lost.length > 0 ? [`GPU ${lost.join(', ')} disappeared from the host inventory`] : [])];
    return all.length > 0 ? all.join('; ') : undefined;
  }

  /** Those of `ids` that the inventory no longer lists (a GPU fell off the bus, a driver reset). */
  missing(ids: readonly string[]): string[] {
    if (ids.length === 0) return [];
    const present = new Set(this.gpus().map((g) => g.id));
    return ids.filter((id) => !present.has(id));
  }

  /** The GPUs one container holds: its `cloud.cyberun.gpus` label, else its device requests. */
  idsOf(c: Holder): string[] {
    return claimsFromContainers([c])[0]?.gpuIds ?? [];
  }

  /**
   * The container's env from env_config without the variables that control GPU access (the runtime
   * sets NVIDIA_VISIBLE_DEVICES from the GPU request); `dropped` names the ones removed.
   */
  environment(envConfig: EnvVar[]): { env: string[]; dropped: string[] } {
    return gpuEnvironment(envConfig);
  }

  private heldBy(serviceId: string): number {
    return claimsFromContainers([...(this.observed.get(serviceId)?.values() ?? [])]).reduce((n, c) => n + c.gpuIds.length, 0);
  }
}
