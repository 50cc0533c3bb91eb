import { silentLogger } from '../../src/log.js';
import type { GpuDevice } from '../../src/domain/gpu-device.js';
import type { DesiredStore } from '../../src/reconcile/desired-store.js';
import { Reconciler, type ReconcilerOptions } from '../../src/reconcile/reconciler.js';
import type { ContainerRuntime } from '../../src/runtime/container-runtime.js';
import { testConfig } from './agent-harness.js';
import { DEFAULT_PULL_BACKOFF } from '../../src/domain/setup-failure.js';
import { ALWAYS_REFUSED } from '../../src/domain/volume-policy.js';

/** A desired-state store that has nothing on disk and keeps nothing. */
export const noStore = { load: async () => undefined, save: async () => undefined } as unknown as DesiredStore;

/**
 * A Reconciler for component tests: the test config's policies, no GPUs unless given, probes
 * every 60 s unless `health` says otherwise, nothing persisted unless `store` is given.
 */
export function componentReconciler(runtime: ContainerRuntime, over: { agentId: string; gpus?: GpuDevice[] } & Partial<Pick<ReconcilerOptions, 'health' | 'store'>>): Reconciler {
  const c = testConfig(over.agentId, '/nonexistent');
  const gpus = over.gpus ?? [];
  return new Reconciler({
    agentId: over.agentId,
    runtime,
    logger: silentLogger(),
    network: 'n',
    host: () => ({ labels: [], gpus, allowedRoots: [], refusedPaths: ALWAYS_REFUSED, allowedRegistries: [] }),
    policy: { ...DEFAULT_PULL_BACKOFF, startBudgetMs: 60_000, failureThreshold: 3, restart: c.restart },
    pull: c.pull,
    containers: c.containers,
    driverCapabilities: c.gpu.driverCapabilities,
    stopTimeoutMs: 1_000,
    orphanGraceMs: 60_000,
    gpuDeviceStyle: 'device-ids',
    now: Date.now,
    random: Math.random,
    gpuDevices: () => gpus,
    health: over.health ?? { intervalMs: 60_000, timeoutMs: 1_000, failureThreshold: 3 },
    resyncIntervalMs: 60_000,
    store: over.store ?? noStore,
  });
}
