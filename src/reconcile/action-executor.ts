import type { Logger } from '../log.js';
import type { ContainerCreateRequest, PullProgress } from '../runtime/container-runtime.js';
import { replicaLabels } from '../domain/ownership-labels.js';
import { recordSetupFailure, type Action, type ReplicaMemory } from '../domain/replica-planner.js';
import type { ReplicaPhase } from '../domain/status-types.js';
import { AgentError, ErrorCodes, errorMessage, isAgentError } from '../errors.js';
import { mountEscape, resolveVolumes } from './host-rejection.js';
import { containerSettings } from '../domain/container-settings.js';
import { pullDecision } from '../domain/image-source.js';
import type { WorkerContext, WorkerTarget } from './worker-context.js';
import { createResolvingName } from './name-holder.js';
import { setupFailureKind } from './failure-kind.js';

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
      this.recordSetup(index, target, err, 'start');
      throw err;
    }
  }

  /** Records a failure before the container ran, in the class of its cause (setup-failure.ts). */
  private recordSetup(index: number, target: WorkerTarget, err: unknown, stage: 'pull' | 'create' | 'start'): void {
    // Aborted: shutdown. A refused volume: the next pass rejects the service as a whole.
    if (!target.specHash || isAgentError(err, ErrorCodes.ABORTED) || isAgentError(err, ErrorCodes.VOLUME_REFUSED)) return;
    const kind = setupFailureKind(err, stage);
    const { ctx } = this;
    this.state.memory.set(index, recordSetupFailure(this.state.memory.get(index), target.specHash, kind, errorMessage(err), ctx.policy, ctx.now(), ctx.random));
  }

  /**
   * Allocate GPUs, ensure the image, create, start. Returns false when the replica must wait for
   * GPUs (the GpuBook wakes every worker when GPUs are released). Any other failure is recorded in
   * the class of its cause, so a registry blip retries patiently and a broken image backs off
   * instead of looping hot; none of them counts as a restart.
   */
  private async create(action: Extract<Action, { kind: 'create' }>, target: WorkerTarget, log: Logger): Promise<boolean> {
    const { ctx } = this;
    const definition = target.definition;
    if (!definition?.docker_image || !target.specHash) return false;
    const image = definition.docker_image;
    const claim = ctx.gpus.reserve(this.serviceId, definition.service_slug, action.index, definition.gpu_count);
    if (claim.kind !== 'allocated') {
      if (!this.state.pendingGpus.has(action.index)) log.info({ reason: claim.reason }, 'replica waits for GPUs');
      this.state.pendingGpus.set(action.index, claim.reason);
      return false;
    }
    this.state.pendingGpus.delete(action.index);
    let createdId: string;
    let stage: 'pull' | 'create' = 'pull';
    try {
      await this.ensureImage(action.index, image, log);
      stage = 'create';
      this.state.transient.set(action.index, { phase: 'creating', reason: undefined });
      // Judged again now: the pull may have taken minutes, and a checked directory may have been swapped for a link.
      const volumes = await resolveVolumes(definition, ctx.host());
      if (!volumes.ok) throw new AgentError(ErrorCodes.VOLUME_REFUSED, volumes.reason);
      const { env, dropped } = ctx.gpus.environment(definition.env_config);
      if (dropped.length > 0) log.warn({ dropped }, 'env_config variables that control GPU access are ignored (GPUs come from gpu_count)');
      const request: ContainerCreateRequest = {
        name: action.name,
        image,
        env,
        labels: replicaLabels({
          agentId: ctx.agentId,
          serviceId: this.serviceId,
          serviceSlug: definition.service_slug,
          replicaIndex: action.index,
          specHash: target.specHash,
          gpuIds: claim.gpuIds,
        }),
        binds: volumes.binds,
        exposedPort: definition.exposed_port,
        network: ctx.network,
        publishPort: ctx.runtime.publishesPorts,
        gpu: claim.gpuIds.length > 0 ? { kind: 'devices', ids: claim.gpuIds, style: ctx.gpuDeviceStyle } : { kind: 'none' },
        settings: containerSettings(ctx.containers, ctx.driverCapabilities, claim.gpuIds.length > 0),
      };
      const id = await createResolvingName(ctx, request, log);
      ctx.gpus.bind(this.serviceId, action.index, id);
      log.info({ container: id, name: action.name, gpus: claim.gpuIds, reason: action.reason }, 'created replica');
      createdId = id;
    } catch (err) {
      this.recordSetup(action.index, target, err, stage);
      throw err;
    } finally {
      ctx.gpus.unreserve(this.serviceId, action.index);
    }
    await this.startOrRecord(action.index, createdId, target);
    if (definition.volume_config.length > 0) await this.verifyMounts(createdId, log);
    return true;
  }

  /**
   * Reads the started container's mounts back (host-rejection.ts mountEscape). One whose source moved
   * outside the policy between the last check and the start is stopped and removed at once, and the
   * replica fails with VOLUME_REFUSED: the next pass judges the volumes again and rejects the service.
   */
  private async verifyMounts(containerId: string, log: Logger): Promise<void> {
    const { ctx } = this;
    const observed = await ctx.runtime.inspectContainer(containerId);
    const escape = await mountEscape(observed?.bindSources ?? [], ctx.host());
    if (escape === undefined) return;
    log.error({ container: containerId, reason: escape }, 'a started replica mounts a path the volume policy refuses; stopping and removing it');
    ctx.prober.forget(containerId);
    await ctx.runtime.stopContainer(containerId, 0);
    await ctx.runtime.removeContainer(containerId);
    ctx.gpus.release(containerId);
    throw new AgentError(ErrorCodes.VOLUME_REFUSED, escape);
  }

  /**
   * Pulls the image when pull.policy asks for it (image-source.ts). A moving tag already on the host
   * whose pull fails transiently (a registry blip) runs from the image on the host, as a warning:
   * a registry outage never stops a replica that could run.
   */
  private async ensureImage(index: number, image: string, log: Logger): Promise<void> {
    const present = await this.ctx.runtime.hasImage(image);
    const decision = pullDecision(this.ctx.pull.policy, image, present);
    if (decision === 'use-present') return;
    if (decision === 'missing') {
      throw new AgentError(ErrorCodes.IMAGE_NOT_PRESENT, `image "${image}" is not on this host and pull.policy is "never"; load it on the host (docker load / docker pull) or set pull.policy to "auto"`);
    }
    try {
      await this.pull(index, image, log);
    } catch (err) {
      if (!present || setupFailureKind(err, 'pull') !== 'pull-transient') throw err;
      log.warn({ image, err: errorMessage(err) }, 'pull failed; the replica runs from the image already on this host');
    }
  }

  private async pull(index: number, image: string, log: Logger): Promise<void> {
    const { ctx } = this;
    const startedAt = ctx.now();
    this.state.transient.set(index, { phase: 'pulling', reason: `pulling ${image}`, pull: { currentBytes: 0, totalBytes: 0, layers: 0, layersDone: 0, startedAt } });
    this.publishNow();
    log.info({ image }, 'pulling image');
    await ctx.runtime.pullImage(image, {
      ...ctx.pull,
      onProgress: (p) => {
        this.state.transient.set(index, { phase: 'pulling', reason: `pulling ${image}`, pull: { ...p, startedAt } });
        // The engine reports progress many times a second; status (and its tunnel frame) at most every 500 ms.
        if (ctx.now() - this.progressPublishedAt >= PROGRESS_PUBLISH_MS) {
          this.progressPublishedAt = ctx.now();
          this.publishNow();
        }
      },
    }).catch((err: unknown) => {
      ctx.images?.pullFailed(image, err);
      throw err;
    });
    ctx.images?.pulled(image);
  }
}
