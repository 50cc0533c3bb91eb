import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Labels } from '../../src/domain/ownership-labels.js';
import { engineCall, newTestRunId, removeTestNetwork, requireDocker } from '../helpers/docker.js';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { startTestAgent, tempDir, testConfig, type TestAgent } from '../helpers/agent-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { sweepByLabel } from '../helpers/engine.js';
import { testDefinition } from '../helpers/test-definition.js';

const docker = await requireDocker('image pull integration tests');

/** The agent pulling a missing image from a registry on 127.0.0.1, as a replica's `pulling` phase. */
describe.skipIf(!docker)('image pulls through the agent', () => {
  const runId = newTestRunId('pull');
  let registry: FakeRegistry;
  let t: TestAgent;
  let image: string;

  beforeAll(async () => {
    registry = await startFakeRegistry({ layerBytes: 8 * 1024 * 1024, chunkDelayMs: 60 });
    image = `${registry.host}/pull-${runId.slice(-6)}:1`;
    t = await startTestAgent(testConfig(runId, await tempDir('pull-state')));
  });

  afterAll(async () => {
    await t?.stop();
    await sweepByLabel(`${Labels.AGENT_ID}=${t?.config.agentId}`);
    await removeTestNetwork(t?.config.docker.network ?? '');
    await engineCall('DELETE', `/images/${encodeURIComponent(image)}?force=true`);
    await registry?.close();
  });

  it('reports bytes and total while pulling, at most twice a second, then has the image', async () => {
    const started = Date.now();
    t.agent.reconciler.applyDesired([{ id: 'svc-pull', definition: testDefinition('puller', { docker_image: image }) }], 1, 'test');
    await waitFor('the pull to finish', async () => (await engineCall('GET', `/images/${encodeURIComponent(image)}/json`)).status === 200, 60_000);
    const elapsed = Date.now() - started;
    const pulling = t.reports.filter((r) => r.serviceId === 'svc-pull').flatMap((r) => r.replicas).filter((r) => r.phase === 'pulling');
    expect(pulling.length).toBeGreaterThan(0);
    const last = pulling[pulling.length - 1]!;
    expect(last.pull?.totalBytes).toBe(registry.layerSize(image.slice(registry.host.length + 1, -2)));
    expect(last.pull?.currentBytes).toBeGreaterThan(0);
    expect(last.reason).toContain(image);
    // Throttled: the engine sends a progress line per chunk (32 here), status goes out every 500 ms.
    expect(pulling.length).toBeLessThanOrEqual(Math.floor(elapsed / 500) + 3);
  });
});
