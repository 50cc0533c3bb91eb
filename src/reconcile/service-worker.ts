import type { Logger } from '../log.js';
import type { ServiceDefinition } from '../service-definition/types.js';
import type { ContainerRuntime, PullProgress } from '../runtime/container-runtime.js';
import type { ObservedContainer } from '../domain/observed-container.js';
import { Labels, ownershipFilter, replicaLabels, serviceSlugOf } from '../domain/ownership-labels.js';
import { planService, recordStartFailure, type Action, type PlanPolicy, type ReplicaMemory } from '../domain/replica-planner.js';
import { hostRejection, type HostFacts } from './host-rejection.js';
import { bindsFor } from '../domain/volume-policy.js';
import type { ReplicaPhase, ReplicaStatus } from '../domain/status-types.js';
import { errorMessage } from '../errors.js';
import type { HttpProber } from '../health/http-prober.js';
import type { GpuBook } from './gpu-book.js';

const PROGRESS_PUBLISH_MS = 500;

/** What a worker needs from its surroundings; the reconciler passes one shared instance. */
export interface WorkerContext {
  agentId: string;
  runtime: ContainerRuntime;
  prober: HttpProber;
  gpus: GpuBook;
  logger: Logger;
  network: string;
  /** Labels, GPUs and volume allowlist of this host, read at each pass (labels reload on SIGHUP). */
  host: () => HostFacts;
  policy: PlanPolicy;
  pull: { stallTimeoutMs: number; totalTimeoutMs: number };
  stopTimeoutMs: number;
  orphanGraceMs: number;
  gpuDeviceStyle: 'device-ids' | 'cdi';
  now: () => number;
  random: () => number;
  /** Called after every pass with the replica statuses (the reconciler aggregates and publishes). */
  publish: (serviceId: string, replicas: ReplicaStatus[]) => void;
}

export interface WorkerTarget {
  serviceId: string;
  /** undefined: not desired here (removal). */
  definition: ServiceDefinition | undefined;
  specHash: string | undefined;
  /** Destructive actions on undesired services wait for the first full snapshot. */
  destructiveAllowed: boolean;
  /**
   * The service was desired earlier in this agent's life (or in the restored snapshot) and has been
   * removed since: its containers go at once. Containers of services never desired here are
   * orphans, removed only once older than the grace period.
   */
  removedExplicitly: boolean;
}

interface Transient {
  phase: ReplicaPhase;
  reason: string | undefined;
  pull?: PullProgress & { startedAt: number };
}

/**
 * One serialized worker per service (kubelet pod worker): passes never overlap; a request made
 * while a pass runs triggers exactly one more pass afterwards, which reads the newest target, so a
 * newer definition replaces a queued one and a removal is never dropped.
 */
export class ServiceWorker {
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private memory = new Map<number, ReplicaMemory>();
  private transient = new Map<number, Transient>();
  /** Replicas waiting for GPUs, with the allocator's reason; cleared when an allocation succeeds. */
  private pendingGpus = new Map<number, string>();
  private lastReplicas: ReplicaStatus[] = [];
  private progressPublishedAt = 0;
  private lastContainers: ObservedContainer[] = [];
  private closed = false;
  /** The loop in progress, if any (what close() waits for). */
  private current: Promise<void> | undefined;

  constructor(
    readonly serviceId: string,
    private readonly ctx: WorkerContext,
    private readonly target: () => WorkerTarget,
    private readonly onIdle: (serviceId: string, empty: boolean) => void,
  ) {}

  get containers(): readonly ObservedContainer[] {
    return this.lastContainers;
  }

  /** Ask for a pass soon. Idempotent and cheap; safe to call from event handlers. */
  kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.current = new Promise<void>((resolve) => queueMicrotask(() => void this.loop().finally(resolve)));
  }

  /**
   * No further passes. Resolves when the pass in progress (if any) has finished its current
   * action, so a stop never leaves a create or start half done; callers bound the wait (a pull
   * can take minutes).
   */
  close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    return this.current ?? Promise.resolve();
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        const more = await this.pass().catch((err: unknown) => {
          this.ctx.logger.warn({ err, service: this.serviceId }, 'reconcile pass failed; retrying');
          this.wakeAt(this.ctx.now() + 2_000);
          return false;
        });
        if (more) this.again = true;
      } while (this.again && !this.closed);
    } finally {
      this.running = false;
    }
  }

  /** Schedules a pass at `t`, unless one is already scheduled earlier. */
  private wakeAt(t: number): void {
    if (this.timer !== undefined && this.timerAt <= t) return;
    clearTimeout(this.timer);
    this.timerAt = t;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, Math.max(0, t - this.ctx.now()));
    this.timer.unref?.();
  }

  /** One observe → plan → act step. Returns true when it acted (another pass takes the next step). */
  private async pass(): Promise<boolean> {
    const { ctx } = this;
    const target = this.target();
    const now = ctx.now();
    let containers = await this.observe();
    this.lastContainers = containers;
    ctx.gpus.observe(this.serviceId, containers);

    if (!target.definition || !target.specHash || target.definition.service_type === 'external') {
      if (!target.destructiveAllowed) return this.finish([], false);
      if (!target.removedExplicitly) {
        // Orphans younger than the grace period are left alone for now (a racing create elsewhere).
        const old = containers.filter((c) => now - c.createdAt >= ctx.orphanGraceMs);
        if (old.length < containers.length) this.wakeAt(Math.min(...containers.map((c) => c.createdAt)) + ctx.orphanGraceMs + 1);
        containers = old;
      }
    } else {
      const rejected = await hostRejection(target.definition, ctx.host());
      if (rejected) {
        const replicas = Array.from({ length: target.definition.replica_count }, (_, index) => this.status(index, 'rejected', rejected, undefined));
        ctx.publish(this.serviceId, replicas);
        return false;
      }
    }

    const desired = target.definition && target.specHash && target.definition.service_type === 'deployed'
      ? { replicaCount: target.definition.replica_count, specHash: target.specHash, healthPath: target.definition.health_path }
      : undefined;
    this.ensureProbes(containers, target.definition);
    const gpuCount = target.definition?.gpu_count ?? 0;
    const plan = planService({
      now,
      random: ctx.random,
      serviceSlug: target.definition?.service_slug ?? (containers[0] && serviceSlugOf(containers[0])) ?? this.serviceId,
      desired,
      containers,
      probes: ctx.prober.views(),
      memory: this.memory,
      policy: ctx.policy,
      // A replacement can start beside its predecessor only if it needs no GPUs, or enough are free
      // beside the ones the predecessor holds (never for -1: it needs every GPU).
      startFirst: gpuCount === 0 || (gpuCount > 0 && ctx.gpus.freeCount() >= gpuCount),
    });
    this.memory = plan.memory;
    if (plan.wakeAt !== undefined) this.wakeAt(plan.wakeAt);

    const wanted = new Set(plan.actions.filter((a) => a.kind === 'create').map((a) => a.index));
    for (const i of [...this.pendingGpus.keys()]) if (!wanted.has(i)) this.pendingGpus.delete(i);
    this.lastReplicas = plan.replicas.map((r) => {
      const c = containers.find((x) => x.id === r.containerId);
      const gpuIds = c ? ctx.gpus.idsOf(c) : [];
      const lost = ctx.gpus.missing(gpuIds);
      const reason = lost.length > 0 ? `GPU ${lost.join(', ')} disappeared from the host inventory${r.reason ? `; ${r.reason}` : ''}` : r.reason;
      return { ...this.status(r.index, r.phase, reason, r.containerId, gpuIds), restartCount: r.restartCount, specHash: r.specHash };
    });
    this.publishNow();
    if (plan.actions.length === 0) return this.finish(this.lastReplicas, containers.length === 0);

    const acted = await this.execute(plan.actions, target);
    this.publishNow();
    return acted;
  }

  /** Publishes the last planned replicas with the live overlays (pull progress, GPU waits). */
  private publishNow(): void {
    this.ctx.publish(
      this.serviceId,
      this.lastReplicas.map((r) => {
        const t = this.transient.get(r.index);
        const pending = this.pendingGpus.get(r.index);
        if (t) return { ...this.status(r.index, t.phase, t.reason, r.containerId, r.gpuIds), restartCount: r.restartCount, specHash: r.specHash };
        if (pending && r.phase === 'creating') return { ...r, phase: 'pending' as const, reason: pending };
        return r;
      }),
    );
  }

  /**
   * Lists the service's containers, then inspects each: the list API carries no StartedAt,
   * FinishedAt, exit code or start error, and the planner needs all of them. A container that
   * vanishes between list and inspect is simply gone.
   */
  private async observe(): Promise<ObservedContainer[]> {
    const { runtime, agentId } = this.ctx;
    const listed = await runtime.listContainers({ ...ownershipFilter(agentId), [Labels.SERVICE_ID]: this.serviceId });
    const inspected = await Promise.all(listed.map((c) => runtime.inspectContainer(c.id)));
    return inspected.filter((c): c is ObservedContainer => c !== undefined);
  }

  private finish(replicas: ReplicaStatus[], empty: boolean): false {
    this.onIdle(this.serviceId, empty && replicas.length === 0);
    return false;
  }

  private ensureProbes(containers: readonly ObservedContainer[], definition: ServiceDefinition | undefined): void {
    const keep = new Set<string>();
    for (const c of containers) {
      if (c.state !== 'running' || !definition || !c.startedAt) continue;
      const endpoint = this.ctx.runtime.replicaEndpoint(c, definition.exposed_port);
      if (!endpoint) continue;
      keep.add(c.id);
      this.ctx.prober.ensure({ containerId: c.id, startedAt: c.startedAt, host: endpoint.host, port: endpoint.port, path: definition.health_path });
    }
    const mine = new Set(this.lastContainers.map((c) => c.id));
    this.ctx.prober.retain(keep, (id) => mine.has(id));
  }

  private status(index: number, phase: ReplicaPhase, reason: string | undefined, containerId: string | undefined, gpuIds: string[] = []): ReplicaStatus {
    const t = this.transient.get(index);
    const pull = t?.pull;
    let eta: number | undefined;
    if (pull && pull.currentBytes > 0 && pull.totalBytes > pull.currentBytes) {
      const rate = pull.currentBytes / Math.max(1, this.ctx.now() - pull.startedAt);
      eta = Math.round((pull.totalBytes - pull.currentBytes) / rate / 1000);
    }
    return {
      index,
      phase: t?.phase ?? phase,
      reason: t ? t.reason : reason,
      containerId,
      gpuIds,
      restartCount: this.memory.get(index)?.restart.totalRestarts ?? 0,
      pull: pull ? { currentBytes: pull.currentBytes, totalBytes: pull.totalBytes, etaSeconds: eta } : undefined,
      since: this.ctx.now(),
      specHash: undefined,
    };
  }

  /** Runs actions in stages (free resources first, then start new ones). True if anything changed. */
  private async execute(actions: Action[], target: WorkerTarget): Promise<boolean> {
    const order: Record<Action['kind'], number> = { stop: 0, remove: 0, fail: 1, rename: 1, start: 2, create: 2 };
    let acted = false;
    for (const stage of [0, 1, 2]) {
      const batch = actions.filter((a) => order[a.kind] === stage);
      const results = await Promise.all(batch.map((a) => this.act(a, target)));
      acted ||= results.some(Boolean);
    }
    return acted;
  }

  private async act(action: Action, target: WorkerTarget): Promise<boolean> {
    const { ctx } = this;
    const log = ctx.logger.child({ service: target.definition?.service_slug ?? this.serviceId, replica: action.index });
    try {
      switch (action.kind) {
        case 'remove':
          log.info({ container: action.containerId, reason: action.reason }, 'removing replica');
          ctx.prober.forget(action.containerId);
          await ctx.runtime.stopContainer(action.containerId, ctx.stopTimeoutMs);
          await ctx.runtime.removeContainer(action.containerId);
          ctx.gpus.release(action.containerId);
          return true;
        case 'stop':
          log.warn({ container: action.containerId, reason: action.reason }, 'stopping replica for restart');
          ctx.prober.forget(action.containerId);
          await ctx.runtime.stopContainer(action.containerId, ctx.stopTimeoutMs);
          return true;
        case 'rename':
          await ctx.runtime.renameContainer(action.containerId, action.name);
          return true;
        case 'fail': {
          const tail = await ctx.runtime.logsTail(action.containerId, 20).catch(() => '');
          const lines = tail.trim().split('\n').slice(-10).join('\n');
          const detail = `${action.exit}${lines ? `; last log lines:\n${lines}` : ''}`;
          const mem = this.memory.get(action.index);
          if (mem) this.memory.set(action.index, { ...mem, failedReason: detail });
          log.error({ container: action.containerId, exit: action.exit }, 'replica failed: crash loop');
          return true;
        }
        case 'start':
          log.info({ container: action.containerId, reason: action.reason }, 'starting replica');
          await this.startOrRecord(action.index, action.containerId, target);
          return true;
        case 'create':
          return await this.create(action, target, log);
      }
    } catch (err) {
      log.warn({ err, action: action.kind }, 'replica action failed');
      return true;
    } finally {
      this.transient.delete(action.index);
    }
  }

  private async startOrRecord(index: number, containerId: string, target: WorkerTarget): Promise<void> {
    try {
      await this.ctx.runtime.startContainer(containerId);
    } catch (err) {
      if (target.specHash) {
        const reason = errorMessage(err);
        this.memory.set(index, recordStartFailure(this.memory.get(index), target.specHash, reason, this.ctx.policy.restart, this.ctx.now(), this.ctx.random));
      }
      throw err;
    }
  }

  /**
   * Allocate GPUs, ensure the image, create, start. Returns false when the replica must wait for
   * GPUs (the GpuBook wakes every worker when GPUs are released). Any other failure is recorded
   * like a crash, so a broken image or registry backs off instead of looping hot.
   */
  private async create(action: Extract<Action, { kind: 'create' }>, target: WorkerTarget, log: Logger): Promise<boolean> {
    const { ctx } = this;
    const definition = target.definition;
    if (!definition?.docker_image || !target.specHash) return false;
    const claim = ctx.gpus.reserve(this.serviceId, definition.service_slug, action.index, definition.gpu_count);
    if (claim.kind !== 'allocated') {
      if (!this.pendingGpus.has(action.index)) log.info({ reason: claim.reason }, 'replica waits for GPUs');
      this.pendingGpus.set(action.index, claim.reason);
      return false;
    }
    this.pendingGpus.delete(action.index);
    let createdId: string;
    try {
      if (!(await ctx.runtime.hasImage(definition.docker_image))) {
        const startedAt = ctx.now();
        this.transient.set(action.index, { phase: 'pulling', reason: `pulling ${definition.docker_image}`, pull: { currentBytes: 0, totalBytes: 0, layers: 0, layersDone: 0, startedAt } });
        log.info({ image: definition.docker_image }, 'pulling image');
        await ctx.runtime.pullImage(definition.docker_image, {
          ...ctx.pull,
          onProgress: (p) => {
            this.transient.set(action.index, { phase: 'pulling', reason: `pulling ${definition.docker_image}`, pull: { ...p, startedAt } });
            // The engine reports progress many times a second; status (and its tunnel frame) at most every 500 ms.
            if (ctx.now() - this.progressPublishedAt >= PROGRESS_PUBLISH_MS) {
              this.progressPublishedAt = ctx.now();
              this.publishNow();
            }
          },
        });
      }
      this.transient.set(action.index, { phase: 'creating', reason: undefined });
      const { env, dropped } = ctx.gpus.environment(definition.env_config);
      if (dropped.length > 0) log.warn({ dropped }, 'env_config variables that control GPU access are ignored (GPUs come from gpu_count)');
      const id = await ctx.runtime.createContainer({
        name: action.name,
        image: definition.docker_image,
        env,
        labels: replicaLabels({
          agentId: ctx.agentId,
          serviceId: this.serviceId,
          serviceSlug: definition.service_slug,
          replicaIndex: action.index,
          specHash: target.specHash,
          gpuIds: claim.gpuIds,
        }),
        binds: bindsFor(definition.volume_config),
        exposedPort: definition.exposed_port,
        network: ctx.network,
        publishPort: ctx.runtime.publishesPorts,
        gpu: claim.gpuIds.length > 0 ? { kind: 'devices', ids: claim.gpuIds, style: ctx.gpuDeviceStyle } : { kind: 'none' },
      });
      ctx.gpus.bind(this.serviceId, action.index, id);
      log.info({ container: id, name: action.name, gpus: claim.gpuIds, reason: action.reason }, 'created replica');
      createdId = id;
    } catch (err) {
      this.memory.set(action.index, recordStartFailure(this.memory.get(action.index), target.specHash, errorMessage(err), ctx.policy.restart, ctx.now(), ctx.random));
      throw err;
    } finally {
      ctx.gpus.unreserve(this.serviceId, action.index);
    }
    await this.startOrRecord(action.index, createdId, target);
    return true;
  }
}
