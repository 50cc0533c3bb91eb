/**
 * Status the agent reports per service (to the tunnel, the admin endpoint and the CLI).
 *
 * Replica lifecycle:
 *
 *   pending ──▶ pulling ──▶ creating ──▶ starting ──▶ ready ◀──▶ unhealthy
 *      ▲                                    │            │            │
 *      │ (GPUs busy)                        ▼            ▼            ▼
 *      └──────────────────────────────── crashed ──▶ backoff ──▶ (restart) … ──▶ failed
 *
 * `rejected`: this host can never run it (labels, GPUs). `stopping`: being removed.
 */
export type ReplicaPhase =
  | 'pending'
  | 'pulling'
  | 'creating'
  | 'starting'
  | 'ready'
  | 'unhealthy'
  | 'crashed'
  | 'backoff'
  | 'failed'
  | 'stopping'
  | 'rejected';

export interface PullStatus {
  currentBytes: number;
  totalBytes: number;
  /** Seconds left at the current rate, when it can be estimated. */
  etaSeconds: number | undefined;
}

export interface ReplicaStatus {
  index: number;
  phase: ReplicaPhase;
  /** Why it is in this phase, for people: names the cause and, where there is one, the fix. */
  reason: string | undefined;
  containerId: string | undefined;
  gpuIds: string[];
  restartCount: number;
  pull: PullStatus | undefined;
  /** Epoch ms the replica entered this phase. */
  since: number;
  /** Spec hash the replica's container runs. */
  specHash: string | undefined;
}

export type ServiceState = 'deploying' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface ServiceStatusReport {
  serviceId: string;
  slug: string;
  state: ServiceState;
  reason: string | undefined;
  desiredReplicas: number;
  readyReplicas: number;
  replicas: ReplicaStatus[];
  specHash: string;
  /** What the agent ignores or changes in the definition (e.g. GPU variables in env_config); names, never values. */
  warnings: string[];
  /** Epoch ms of the last change. */
  updatedAt: number;
}

/** A replica that may receive traffic: the proxy's view. */
export interface ReadyEndpoint {
  serviceId: string;
  replicaIndex: number;
  containerId: string;
  host: string;
  port: number;
}
