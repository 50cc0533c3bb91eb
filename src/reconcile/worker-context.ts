import type { Logger } from '../log.js';
import type { DesiredService, ServiceDefinition } from '../service-definition/types.js';
import type { ContainerRuntime } from '../runtime/container-runtime.js';
import type { PlanPolicy } from '../domain/replica-planner.js';
import type { ReplicaStatus } from '../domain/status-types.js';
import type { HttpProber } from '../health/http-prober.js';
import type { GpuBook } from './gpu-book.js';
import type { HostFacts } from './host-rejection.js';
import type { ContainerDefaults } from '../domain/container-settings.js';
import type { PullPolicy } from '../domain/image-source.js';

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
  pull: { stallTimeoutMs: number; totalTimeoutMs: number; policy: PullPolicy };
  /** The operator's container defaults and NVIDIA_DRIVER_CAPABILITIES (domain/container-settings.ts). */
  containers: ContainerDefaults;
  driverCapabilities: readonly string[];
  stopTimeoutMs: number;
  orphanGraceMs: number;
  gpuDeviceStyle: 'device-ids' | 'cdi';
  now: () => number;
  random: () => number;
  /** The desired definition of any service (to judge a container holding a replica's name). */
  desiredService: (serviceId: string) => DesiredService | undefined;
  /** Called after every pass with the replica statuses (the reconciler aggregates and publishes). */
  publish: (serviceId: string, replicas: ReplicaStatus[]) => void;
  /** Told of every pull the executor makes (image GC records what the agent pulled). */
  images?: ImagePullObserver | undefined;
}

export interface ImagePullObserver {
  /** `ref` was pulled for a service. */
  pulled(ref: string): void;
  /** A pull of `ref` failed with `err` (an out-of-space failure triggers image GC). */
  pullFailed(ref: string, err: unknown): void;
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
