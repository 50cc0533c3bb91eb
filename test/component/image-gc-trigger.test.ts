import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent.js';
import { AgentError, ErrorCodes } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { FakeRuntime } from '../helpers/fake-runtime.js';
import { noGpuInventory, tempDir, testConfig } from '../helpers/agent-harness.js';
import { testDefinition } from '../helpers/test-definition.js';
import { waitFor } from '../helpers/wait-for.js';

/** An engine whose disk is full: every pull fails as the engine reports it (see the fake-engine test). */
class FullDiskRuntime extends FakeRuntime {
  override async hasImage(): Promise<boolean> {
    return false;
  }
  // FakeRuntime declares pullImage without parameters; the reconciler passes (ref, options).
  override async pullImage(ref?: string): Promise<void> {
    throw new AgentError(ErrorCodes.IMAGE_PULL_NO_SPACE, `pull of image "${ref}" failed: the Docker Engine's disk is full (failed to register layer: no space left on device); the agent removes unused images it pulled (image_gc) and tries again`, { retryable: true });
  }
}

describe('a pull that fails for lack of space', () => {
  let agent: Agent | undefined;
  afterAll(async () => {
    await agent?.stop();
  });

  it('says so in the replica’s reason and triggers an image GC check at once (not at the next interval)', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ level: 'info', destination: new Writable({ write: (c, _e, cb) => { for (const l of c.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>); cb(); } }) });
    const base = testConfig('gc-trigger', await tempDir('gc-trigger'));
    const config = { ...base, imageGc: { enabled: true, highPercent: 100, lowPercent: 100, minAgeMs: 0, intervalMs: 600_000 } };
    agent = await Agent.start({ config, logger, runtime: new FullDiskRuntime(), readInventory: async () => noGpuInventory });
    agent.reconciler.applyDesired([{ id: 'svc-big', definition: testDefinition('big', { docker_image: 'vllm/vllm-openai:v0.6.0' }) }], 1, 'test');
    const triggered = await waitFor('a check triggered by the pull', () => lines.find((l) => l['msg'] === 'checking disk usage now'));
    expect(triggered['why']).toBe("pull of vllm/vllm-openai:v0.6.0 failed: the engine's disk is full");
    const replica = await waitFor('the reason in status', () => agent?.reconciler.statusSnapshot()[0]?.replicas[0]?.reason?.includes('disk is full') ? agent.reconciler.statusSnapshot()[0]?.replicas[0] : undefined);
    expect(replica.phase).toBe('pulling');
    expect(replica.reason).toMatch(/the Docker Engine's disk is full/);
  });
});
