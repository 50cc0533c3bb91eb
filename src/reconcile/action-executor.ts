import type { Logger } from '../log.js';
import type { PullProgress } from '../runtime/container-runtime.js';
import { replicaLabels } from '../domain/ownership-labels.js';
import { recordStartFailure, type Action, type ReplicaMemory } from '../domain/replica-planner.js';
import { bindsFor } from '../domain/volume-policy.js';
import type { ReplicaPhase } from '../domain/status-types.js';
import { errorMessage } from '../errors.js';
import type { WorkerContext, WorkerTarget } from './worker-context.js';

const PROGRESS_PUBLISH_MS = 500;

/** A phase the executor shows while an action runs (pulling with progress, creating). */
export interface Transient {
  phase: ReplicaPhase;
  reason: string | undefined;
  pull?: PullProgress & { startedAt: number };
}

/** What a service worker remembers per replica index, shared with its executor. */
export interface WorkerState {
  memory: Map<number, ReplicaMemory>;
  transient: Map<number, Transient>;
  /** Replicas waiting for GPUs, with the allocator's reason; cleared when an allocation succeeds. */
  pendingGpus: Map<number, string>;
}

/**
 * Carries out one pass's actions for one service (the planner decided them): stop/remove first to
 * free resources, then the crash-loop bookkeeping and renames, then starts and creates. A failing
 * action is logged and recorded in the replica's memory (start and create failures count like a
 * death, so a broken image or engine backs off instead of looping hot); it never throws.
 */
export class ActionExecutor {
  private progressPublishedAt = 0;

  constructor(
    private readonly serviceId: string,
    private readonly ctx: WorkerContext,
    private readonly state: WorkerState,
    /** Publishes the worker's status with the live overlays (pull progress). */
    private readonly publishNow: () => void,
  ) {}

  /** Runs actions in stages (free resources first, then start new ones). True if anything changed. */
  async execute(actions: Action[], target: WorkerTarget): Promise<boolean> {
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
          const mem = this.state.memory.get(action.index);
          if (mem) this.state.memory.set(action.index, { ...mem, failedReason: detail });
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
      this.state.transient.delete(action.index);
    }
  }

  private async startOrRecord(index: number, containerId: string, target: WorkerTarget): Promise<void> {
    try {
      await this.ctx.runtime.startContainer(containerId);
    } catch (err) {
      if (target.specHash) {
        const reason = errorMessage(err);
        this.state.memory.set(index, recordStartFailure(this.state.memory.get(index), target.specHash, reason, this.ctx.policy.restart, this.ctx.now(), this.ctx.random));
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
      if (!this.state.pendingGpus.has(action.index)) log.info({ reason: claim.reason }, 'replica waits for GPUs');
      this.state.pendingGpus.set(action.index, claim.reason);
      return false;
    }
    this.state.pendingGpus.delete(action.index);
    let createdId: string;
    try {
      if (!(await ctx.runtime.hasImage(definition.docker_image))) {
        const startedAt = ctx.now();
        this.state.transient.set(action.index, { phase: 'pulling', reason: `pulling ${definition.docker_image}`, pull: { currentBytes: 0, totalBytes: 0, layers: 0, layersDone: 0, startedAt } });
        log.info({ image: definition.docker_image }, 'pulling image');
        await ctx.runtime.pullImage(definition.docker_image, {
          ...ctx.pull,
          onProgress: (p) => {
            this.state.transient.set(action.index, { phase: 'pulling', reason: `pulling ${definition.docker_image}`, pull: { ...p, startedAt } });
            // The engine reports progress many times a second; status (and its tunnel frame) at most every 500 ms.
            if (ctx.now() - this.progressPublishedAt >= PROGRESS_PUBLISH_MS) {
              this.progressPublishedAt = ctx.now();
              this.publishNow();
            }
          },
        });
      }
      this.state.transient.set(action.index, { phase: 'creating', reason: undefined });
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
      this.state.memory.set(action.index, recordStartFailure(this.state.memory.get(action.index), target.specHash, errorMessage(err), ctx.policy.restart, ctx.now(), ctx.random));
      throw err;
    } finally {
      ctx.gpus.unreserve(this.serviceId, action.index);
    }
    await this.startOrRecord(action.index, createdId, target);
    return true;
  }
}
