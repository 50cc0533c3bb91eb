import { describe, expect, it } from 'vitest';
import { Reconciler } from '../../src/reconcile/reconciler.js';
import { silentLogger } from '../../src/log.js';
import { Labels } from '../../src/runtime/labels.js';
import { fixtureGpus } from '../fixtures/hosts/gpu-devices.js';
import { FakeRuntime } from '../helpers/fake-runtime.js';
import { serviceSpec } from '../helpers/service-spec.js';
import { testConfig } from '../helpers/agent-harness.js';
import type { DesiredStore } from '../../src/reconcile/desired-store.js';

describe('reconciler boot', () => {
  it('knows every existing container\'s GPUs before any worker allocates (no double allocation after a restart)', async () => {
    const gpus = fixtureGpus('a100x4');
    const runtime = new FakeRuntime();
    const agentId = 'boot-test';
    // Left running by the previous agent process: service "old" holds all four GPUs.
    runtime.add({ id: 'c-old', labels: { [Labels.MANAGED]: 'true', [Labels.AGENT_ID]: agentId, [Labels.SERVICE_ID]: 'old', [Labels.SERVICE_SLUG]: 'old', [Labels.REPLICA]: '0', [Labels.SPEC_HASH]: 'x', [Labels.GPUS]: '0,1,2,3' } });
    // The snapshot on disk wants only "new", which asks for 2 GPUs.
    const store = { load: async () => ({ revision: 1, source: 'gateway', services: [{ id: 'new', spec: serviceSpec('new', { gpu_count: 2 }) }] }), save: async () => undefined } as unknown as DesiredStore;
    const c = testConfig('boot', '/nonexistent');
    const reconciler = new Reconciler({
      agentId, runtime, logger: silentLogger(), network: 'n', host: () => ({ labels: [], gpus, allowedRoots: [] }),
      policy: { startBudgetMs: 60_000, failureThreshold: 3, restart: c.restart }, pull: c.pull, stopTimeoutMs: 1_000,
      orphanGraceMs: 60_000, gpuDeviceStyle: 'device-ids', now: Date.now, random: Math.random, store, gpuDevices: () => gpus,
      health: { intervalMs: 60_000, timeoutMs: 1_000, failureThreshold: 3 }, resyncIntervalMs: 60_000,
    });
    await reconciler.start();
    await new Promise((r) => setTimeout(r, 200));
    const status = reconciler.statusSnapshot().find((s) => s.serviceId === 'new');
    await reconciler.stop();
    expect(runtime.created).toEqual([]);
    expect(status?.replicas[0]?.phase).toBe('pending');
    expect(status?.replicas[0]?.reason).toContain('old');
    expect(runtime.containers.has('c-old')).toBe(true); // an orphan younger than the grace stays
  });
});
