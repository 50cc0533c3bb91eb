/**
 * The agent's view of a container engine. `DockerRuntime` (Docker Engine API) implements it;
 * component tests use a recording fake. Every method translates engine errors into AgentError with a stable
 * code (DOCKER_NOT_FOUND, DOCKER_CONFLICT, DOCKER_TIMEOUT, DOCKER_UNAVAILABLE, DOCKER_TLS, DOCKER_API,
 * IMAGE_PULL_*, CONTAINER_START_FAILED) and has a timeout, except stop/wait which take their own.
 */
import type { ObservedContainer } from '../domain/observed-container.js';
import type { ContainerSettings } from '../domain/container-settings.js';
import type { LogEntry, LogQuery } from '../domain/log-entry.js';

export interface PullProgress {
  /** Bytes downloaded so far, summed over layers. */
  currentBytes: number;
  /** Total bytes known so far, summed over layers (grows as layers are announced). */
  totalBytes: number;
  /** Layers seen / completed. */
  layers: number;
  layersDone: number;
}

export interface PullOptions {
  onProgress?: (p: PullProgress) => void;
  /** Abort if no progress event arrives for this long. */
  stallTimeoutMs: number;
  /** Abort if the pull takes longer than this in total. */
  totalTimeoutMs: number;
  signal?: AbortSignal;
}

export type GpuRequest =
  | { kind: 'none' }
  /** Exactly these device ids; style picks DeviceRequests ('device-ids') or CDI names ('cdi'). */
  | { kind: 'devices'; ids: string[]; style: 'device-ids' | 'cdi' };

export interface ContainerCreateRequest {
  name: string;
  image: string;
  /** KEY=value entries. */
  env: string[];
  labels: Record<string, string>;
  /** host:container[:ro] entries, already checked against the volume policy. */
  binds: string[];
  /** The in-container TCP port the service listens on. */
  exposedPort: number;
  /** Network the container is attached to (created by ensureNetwork). */
  network: string;
  /** Publish exposedPort on an ephemeral host port (remote engines where IPs are unreachable). */
  publishPort: boolean;
  gpu: GpuRequest;
  /** The operator's container defaults for this container (domain/container-settings.ts). */
  settings: ContainerSettings;
}

export interface RuntimeEvent {
  /** 'start' | 'die' | 'destroy' | 'create' | 'stop' | 'kill' | 'oom' | 'health_status' … */
  action: string;
  containerId: string;
  labels: Record<string, string>;
  /** Epoch ms. */
  time: number;
}

export interface ContainerRuntime {
  /** Resolves when the engine answers; throws DOCKER_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  /** Creates the user-defined bridge network if missing. Idempotent. */
  ensureNetwork(name: string): Promise<void>;
  hasImage(ref: string): Promise<boolean>;
  /**
   * Pulls `ref` with registry auth from the host's Docker config. Concurrent pulls of the same ref
   * share one underlying pull. Throws IMAGE_PULL_FAILED / IMAGE_PULL_STALLED / IMAGE_PULL_TIMEOUT.
   */
  pullImage(ref: string, options: PullOptions): Promise<void>;
  /** Creates (does not start) a container; returns its id. DOCKER_CONFLICT if the name is taken. */
  createContainer(spec: ContainerCreateRequest): Promise<string>;
  /** Starts a created/exited container. CONTAINER_START_FAILED carries the engine's reason. */
  startContainer(id: string): Promise<void>;
  /** SIGTERM, then SIGKILL after timeoutMs. A stopped or missing container is not an error. */
  stopContainer(id: string, timeoutMs: number): Promise<void>;
  /** Removes (force). A missing container is not an error. */
  removeContainer(id: string): Promise<void>;
  /** Renames a container (running or not). Used to give a surge replica its stable name. */
  renameContainer(id: string, name: string): Promise<void>;
  /** undefined when the container does not exist. */
  inspectContainer(id: string): Promise<ObservedContainer | undefined>;
  /** All containers (any state) carrying every given label (value '' = key present). */
  listContainers(labels: Record<string, string>): Promise<ObservedContainer[]>;
  /**
   * Container events for containers carrying `labels`, delivered until the signal aborts.
   * Reconnects on stream loss after a short delay; onError reports each loss.
   */
  watchEvents(labels: Record<string, string>, onEvent: (e: RuntimeEvent) => void, signal: AbortSignal, onError?: (err: Error) => void): void;
  /** The last `lines` lines of stdout+stderr, as text. */
  logsTail(id: string, lines: number): Promise<string>;
  /**
   * The container's log as entries, oldest first (container-logs.ts); with `follow`, continues as
   * lines are written until `signal` aborts. Read on demand: a consumer that stops pulling pauses
   * the engine's stream.
   */
  logStream(id: string, query: LogQuery, signal: AbortSignal): AsyncGenerator<LogEntry>;
  /** Where the agent reaches the replica's exposed port, or undefined if not reachable (yet). */
  replicaEndpoint(c: ObservedContainer, exposedPort: number): { host: string; port: number } | undefined;
  /** Whether containers should publish their port (addressing mode resolved against the engine). */
  readonly publishesPorts: boolean;
  // ── image GC (src/reconcile/image-gc.ts) ──
  /** The engine's data root (`DockerRootDir` of GET /info), where images live. */
  dataRoot(): Promise<string>;
  /** Every image on the engine (GET /images/json). */
  listImages(): Promise<EngineImage[]>;
  /** Every container on the engine, any state, any owner (labels ignored): which image each uses. */
  containerImages(): Promise<ContainerImageUse[]>;
  /**
   * Removes one image reference, never forced: an image another tag names is only untagged;
   * DOCKER_CONFLICT while a container uses it; DOCKER_NOT_FOUND when there is no such reference.
   */
  removeImage(ref: string): Promise<void>;
}

/** One image as the engine lists it (GET /images/json), for image GC. */
export interface EngineImage {
  /** sha256:… */
  id: string;
  /** e.g. ["vllm/vllm-openai:v0.6.0"]; empty for an untagged image. */
  repoTags: string[];
  /** e.g. ["vllm/vllm-openai@sha256:…"]. */
  repoDigests: string[];
  /** The engine's `Size` (shared layers included). */
  sizeBytes: number;
}

/** The image one container (any owner, any state) was created from. */
export interface ContainerImageUse {
  containerId: string;
  /** The image id the container runs (sha256:…). */
  imageId: string;
}
