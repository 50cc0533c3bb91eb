import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { FakeRuntime } from '../helpers/fake-runtime.js';
import { componentReconciler } from '../helpers/reconciler-harness.js';
import { testDefinition } from '../helpers/test-definition.js';

describe('reconciler: stop', () => {
  it('waits for a create in progress instead of leaving a container half made', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let creating = false;
    class SlowCreate extends FakeRuntime {
      override async createContainer(spec: Parameters<FakeRuntime['createContainer']>[0]): Promise<string> {
        creating = true;
        await held;
        return super.createContainer(spec);
      }
    }
    const runtime = new SlowCreate();
    const r = componentReconciler(runtime, { agentId: 'stop-test' });
    await r.start();
    r.applyDesired([{ id: 'web', definition: testDefinition('web') }], 1, 'test');
    await waitFor('the create to begin', () => creating);
    let stopped = false;
    const stopping = r.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(runtime.created.map((s) => s.name)).toEqual(['cyberun-web-0']);
  });
});
