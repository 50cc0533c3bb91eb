import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { replicaLabels } from '../../src/domain/ownership-labels.js';
import { DesiredStore } from '../../src/reconcile/desired-store.js';
import { FakeRuntime } from '../helpers/fake-runtime.js';
import { componentReconciler } from '../helpers/reconciler-harness.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { testDefinition } from '../helpers/test-definition.js';
import { waitFor } from '../helpers/wait-for.js';

const AGENT = 'removed-test';

/** A young replica container of `serviceId` left running (the agent was killed before removing it). */
function leftover(runtime: FakeRuntime, serviceId: string): void {
  runtime.add({ id: `c-${serviceId}`, name: `cyberun-${serviceId}-0`, labels: replicaLabels({ agentId: AGENT, serviceId, serviceSlug: serviceId, replicaIndex: 0, specHash: 'h', gpuIds: [] }), createdAt: Date.now() });
}

/**
 * A service removed just before the agent was killed: desired.json no longer holds it, its
 * containers still run. After the restart they go at once, as a removal does, instead of waiting
 * out the orphan grace meant for containers of unknown origin (found by the faults bench:
 * docs/reliability.md).
 */
describe('reconciler: services removed before a restart', () => {
  it('records removed services in desired.json and removes their containers at once after a restart', async () => {
    const dir = await tempDir('removed');
    const first = componentReconciler(new FakeRuntime(), { agentId: AGENT, store: new DesiredStore(dir) });
    await first.start();
    first.applyDesired([{ id: 'gone', definition: testDefinition('gone') }, { id: 'kept', definition: testDefinition('kept') }], 1, 'gateway');
    first.applyDesired([{ id: 'kept', definition: testDefinition('kept') }], 2, 'gateway');
    await waitFor('desired.json with the removal', async () => JSON.parse(await readFile(new DesiredStore(dir).file, 'utf8').catch(() => '{}')).revision === 2);
    await first.stop();
    expect(JSON.parse(await readFile(new DesiredStore(dir).file, 'utf8'))).toMatchObject({ removed: ['gone'] });

    const runtime = new FakeRuntime();
    leftover(runtime, 'gone');
    leftover(runtime, 'never-here');
    const second = componentReconciler(runtime, { agentId: AGENT, store: new DesiredStore(dir) });
    await second.start();
    await waitFor('the removed service\'s container gone', () => !runtime.containers.has('c-gone'));
    // A container of a service this agent never ran is still an orphan: it waits out the grace (60 s here).
    expect(runtime.containers.has('c-never-here')).toBe(true);
    await second.stop();
  });
});
