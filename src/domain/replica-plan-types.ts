import type { ObservedContainer } from './observed-container.js';
import type { ReplicaPhase } from './status-types.js';
import type { RestartPolicy, RestartState } from './backoff.js';
import type { SetupFailure, SetupPolicy } from './setup-failure.js';

/** The planner's input, memory and output (replica-planner.ts). */

/** What the prober knows about one running container. */
export interface ProbeView {
  /** The container's StartedAt this view belongs to. */
  startedAt: string;
  ready: boolean;
  everReady: boolean;
  consecutiveFailures: number;
  lastError: string | undefined;
}

/** What the agent remembers of one replica index between passes (not persisted: rebuilt on boot). */
export interface ReplicaMemory {
  /** Spec hash this memory belongs to; a new spec starts from a clean slate. */
  specHash: string;
  restart: RestartState;
  /** `<container id>@<finishedAt>` of the last death already counted. */
  lastDeath: string | undefined;
  /** Container the agent itself stopped (its death was counted when the stop was decided). */
  expectedStop: string | undefined;
  /** Why the replica last died, for status. */
  lastExit: string | undefined;
  /** Set by the executor once a crash loop's detail (exit code + last log lines) is known. */
  failedReason: string | undefined;
  /** The last failure before a container ran (pull, create/start, engine, name), until one runs. */
  setup: SetupFailure | undefined;
}

export interface PlanPolicy extends SetupPolicy {
  startBudgetMs: number;
  failureThreshold: number;
  restart: RestartPolicy;
}

export interface PlanInput {
  now: number;
  random: () => number;
  serviceSlug: string;
  /** undefined: the service is no longer desired here; everything goes. */
  desired: { replicaCount: number; specHash: string; healthPath: string } | undefined;
  containers: readonly ObservedContainer[];
  probes: ReadonlyMap<string, ProbeView>;
  memory: ReadonlyMap<number, ReplicaMemory>;
  policy: PlanPolicy;
  /** Whether a replacement may start before its predecessor stops. */
  startFirst: boolean;
}

export type Action =
  /** Allocate GPUs, ensure the image, create and start a container for `index` named `name`. */
  | { kind: 'create'; index: number; name: string; reason: string }
  /** Start an existing stopped container again (after backoff). */
  | { kind: 'start'; index: number; containerId: string; reason: string }
  /** Stop a running container (it is started again by a later pass, after backoff). */
  | { kind: 'stop'; index: number; containerId: string; reason: string }
  /** Stop gracefully and remove. */
  | { kind: 'remove'; index: number; containerId: string; reason: string }
  | { kind: 'rename'; index: number; containerId: string; name: string }
  /** Crash loop: fetch the last log lines and record the replica as failed. */
  | { kind: 'fail'; index: number; containerId: string; exit: string };

export interface ReplicaView {
  index: number;
  phase: ReplicaPhase;
  reason: string | undefined;
  containerId: string | undefined;
  specHash: string | undefined;
  restartCount: number;
}

export interface PlanResult {
  actions: Action[];
  memory: Map<number, ReplicaMemory>;
  replicas: ReplicaView[];
  /** Earliest time the plan can change without an outside event (backoff end, start budget). */
  wakeAt: number | undefined;
}
