import type { ServiceDefinition } from '../service-definition/types.js';
import type { ObservedContainer } from '../domain/observed-container.js';
import { Labels, ownershipFilter, serviceSlugOf } from '../domain/ownership-labels.js';
import { clearFailures, clearPullFailures, planService } from '../domain/replica-planner.js';
import { hostRejection } from './host-rejection.js';
import type { ReplicaPhase, ReplicaStatus } from '../domain/status-types.js';
import { ActionExecutor, type WorkerState } from './action-executor.js';
import { moveOffUnhealthyGpus } from './gpu-health-moves.js';
import type { WorkerContext, WorkerTarget } from './worker-context.js';

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
  /** What the worker remembers per replica index; the executor writes to it too. */
  private readonly state: WorkerState = { memory: new Map(), transient: new Map(), pendingGpus: new Map() };
  private readonly executor: ActionExecutor;
  private lastReplicas: ReplicaStatus[] = [];
  private lastContainers: ObservedContainer[] = [];
  private closed = false;
  /** The loop in progress, if any (what close() waits for). */
  private current: Promise<void> | undefined;

  constructor(
    readonly serviceId: string,
    private readonly ctx: WorkerContext,
    private readonly target: () => WorkerTarget,
    private readonly onIdle: (serviceId: string, empty: boolean) => void,
  ) {
    this.executor = new ActionExecutor(serviceId, ctx, this.state, () => this.publishNow());
  }

  get containers(): readonly ObservedContainer[] {
    return this.lastContainers;
  }

  /** Forgets every replica's failures (crash loop, setup failure) and runs a pass: they are tried at once. */
  retryFailures(): void {
    for (const [index, mem] of this.state.memory) this.state.memory.set(index, clearFailures(mem));
    this.kick();
  }

  /** Pulls that failed are tried again at once; other failures keep their backoff. */
  retryPulls(): void {
    for (const [index, mem] of this.state.memory) this.state.memory.set(index, clearPullFailures(mem));
    this.kick();
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
    const serviceSlug = target.definition?.service_slug ?? (containers[0] && serviceSlugOf(containers[0])) ?? this.serviceId;
    const plan = planService({
      now,
      random: ctx.random,
      serviceSlug,
      desired,
      containers,
      probes: ctx.prober.views(),
      memory: this.state.memory,
      policy: ctx.policy,
      // A replacement can start beside its predecessor only if it needs no GPUs, or enough are free
      // beside the ones the predecessor holds (never for -1: it needs every GPU).
      startFirst: gpuCount === 0 || (gpuCount > 0 && ctx.gpus.freeCount() >= gpuCount),
    });
    this.state.memory = plan.memory;
    if (plan.wakeAt !== undefined) this.wakeAt(plan.wakeAt);
    // A restart never reuses an unhealthy GPU: it moves to healthy ones, or waits for them.
    const { actions, waiting } = moveOffUnhealthyGpus(plan.actions, containers, ctx.gpus, { serviceId: this.serviceId, serviceSlug, gpuCount });

    const wanted = new Set(actions.filter((a) => a.kind === 'create').map((a) => a.index));
    for (const i of [...this.state.pendingGpus.keys()]) if (!wanted.has(i)) this.state.pendingGpus.delete(i);
    this.lastReplicas = plan.replicas.map((r) => {
      const c = containers.find((x) => x.id === r.containerId);
      const gpuIds = c ? ctx.gpus.idsOf(c) : [];
      const faults = ctx.gpus.faults(gpuIds);
      const wait = waiting.get(r.index);
      const reason = wait ?? (faults !== undefined ? `${faults}${r.reason ? `; ${r.reason}` : ''}` : r.reason);
      return { ...this.status(r.index, wait !== undefined ? 'pending' : r.phase, reason, r.containerId, gpuIds), restartCount: r.restartCount, specHash: r.specHash };
    });
    this.publishNow();
    if (actions.length === 0) return this.finish(this.lastReplicas, containers.length === 0);

    const acted = await this.executor.execute(actions, target);
    this.publishNow();
    return acted;
  }

  /** Publishes the last planned replicas with the live overlays (pull progress, GPU waits). */
  private publishNow(): void {
    this.ctx.publish(
      this.serviceId,
      this.lastReplicas.map((r) => {
        const t = this.state.transient.get(r.index);
        const pending = this.state.pendingGpus.get(r.index);
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
    const t = this.state.transient.get(index);
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
      restartCount: this.state.memory.get(index)?.restart.totalRestarts ?? 0,
      pull: pull ? { currentBytes: pull.currentBytes, totalBytes: pull.totalBytes, etaSeconds: eta } : undefined,
      since: this.ctx.now(),
      specHash: undefined,
    };
  }
}
