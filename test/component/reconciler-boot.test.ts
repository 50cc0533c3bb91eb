import { waitFor } from '../helpers/wait-for.js';
import { describe, expect, it } from 'vitest';
import { Labels } from '../../src/domain/ownership-labels.js';
import { fixtureGpus } from '../fixtures/hosts/gpu-devices.js';
import { FakeRuntime } from '../helpers/fake-runtime.js';
import { testDefinition } from '../helpers/test-definition.js';
import { componentReconciler } from '../helpers/reconciler-harness.js';
import type { DesiredStore } from '../../src/reconcile/desired-store.js';

describe('reconciler boot', () => {
  it('knows every existing container\'s GPUs before any worker allocates (no double allocation after a restart)', async () => {
    const gpus = fixtureGpus('a100x4');
    const runtime = new FakeRuntime();
    const agentId = 'boot-test';
    // Left running by the previous agent process: service "old" holds all four GPUs.
    runtime.add({ id: 'c-old', labels: { [Labels.MANAGED]: 'true', [Labels.AGENT_ID]: agentId, [Labels.SERVICE_ID]: 'old', [Labels.SERVICE_SLUG]: 'old', [Labels.REPLICA]: '0', [Labels.SPEC_HASH]: 'x', [Labels.GPUS]: '0,1,2,3' } });
    // The snapshot on disk wants only "new", which asks for 2 GPUs.
    const store = { load: async () => ({ revision: 1, source: 'gateway', services: [{ id: 'new', definition: testDefinition('new', { gpu_count: 2 }) }] }), save: async () => undefined } as unknown as DesiredStore;
    const reconciler = componentReconciler(runtime, { agentId, gpus, store });
    await reconciler.start();
    const status = await waitFor('the new service to wait for GPUs', () => reconciler.statusSnapshot().find((s) => s.serviceId === 'new' && s.replicas[0]?.phase === 'pending'), 5_000);
    await reconciler.stop();
    expect(runtime.created).toEqual([]);
    expect(status.replicas[0]?.phase).toBe('pending');
    expect(status?.replicas[0]?.reason).toContain('old');
    expect(runtime.containers.has('c-old')).toBe(true); // an orphan younger than the grace stays
  });
});
