import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceStatusReport } from '../../src/domain/status-types.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import { newTestRunId, removeTestNetwork, requireDocker } from '../helpers/docker.js';
import { sweepByLabel } from '../helpers/engine.js';
import { startTestAgent, tempDir, testConfig, type TestAgent } from '../helpers/agent-harness.js';
import { requireRegistry, startLocalRegistry, type LocalRegistry } from '../helpers/local-registry.js';
import { testDefinition } from '../helpers/test-definition.js';
import { ensureTestImages, TEST_IMAGE_HTTP } from '../helpers/test-images.js';
import { waitFor } from '../helpers/wait-for.js';

const docker = await requireDocker('registry outage integration tests');
const registry = requireRegistry(docker, 'registry outage tests');

/** How long the registry is down after the deploy, as in the issue: 25 s. */
const OUTAGE_MS = 25_000;

/**
 * Failures that are not the service's fault heal by themselves: a real registry (Debian's
 * docker-registry on loopback) that is down when the service is deployed and back 25 s later.
 * The agent uses the default pull backoff (10 s doubling to 5 min).
 */
describe.skipIf(!docker || !registry)('image pulls against a real registry that goes away and comes back', () => {
  const runId = newTestRunId('registry');
  let t: TestAgent;
  let reg: LocalRegistry;
  const reportsOf = (id: string): ServiceStatusReport[] => t.reports.filter((r) => r.serviceId === id);

  beforeAll(async () => {
    await ensureTestImages();
    reg = await startLocalRegistry();
    t = await startTestAgent(testConfig(runId, await tempDir('registry-state')));
  }, 120_000);

  afterAll(async () => {
    await t?.stop();
    await sweepByLabel(`${Labels.AGENT_ID}=${t?.config.agentId}`);
    await reg?.close(); // after the sweep: it removes the images pulled from it, unused by then
    await removeTestNetwork(t?.config.docker.network ?? '');
  });

  it('a registry down for 25 s never fails the service nor counts a restart, and it runs within 60 s of the return', async () => {
    const image = await reg.push(TEST_IMAGE_HTTP, `outage-${runId.slice(-6)}`);
    await reg.stop();
    const down = Date.now();
    t.agent.reconciler.applyDesired([{ id: 'svc-outage', definition: testDefinition('outage', { docker_image: image }) }], 1, 'test');
    const retrying = await waitFor('the pull failing and retrying', () => reportsOf('svc-outage').find((r) => r.replicas[0]?.phase === 'pulling' && r.replicas[0].reason?.includes('retrying in')), 15_000);
    expect(retrying.replicas[0]?.reason).toMatch(/connection refused/);
    // The rest of the outage: nothing to wait for but time.
    await new Promise((r) => setTimeout(r, Math.max(0, down + OUTAGE_MS - Date.now())));
    await reg.start();
    const back = Date.now();
    await waitFor('the service running after the registry came back', () => t.status('svc-outage')?.state === 'running', 60_000);
    expect(Date.now() - back).toBeLessThan(60_000);
    const seen = reportsOf('svc-outage');
    expect(seen.filter((r) => r.state === 'failed')).toEqual([]);
    expect(seen.flatMap((r) => r.replicas).filter((x) => x.phase === 'failed' || x.phase === 'crashed' || x.restartCount > 0)).toEqual([]);
    expect(reg.requestsFor(`/v2/outage-${runId.slice(-6)}/manifests/1`).length).toBeGreaterThan(0);
  }, 150_000);

  it('an image the reachable registry does not have fails at once with a clear reason, and a deploy after the push retries it at once', async () => {
    const repo = `missing-${runId.slice(-6)}`;
    const image = `${reg.host}/${repo}:1`;
    const definition = testDefinition('missing', { docker_image: image });
    const started = Date.now();
    t.agent.reconciler.applyDesired([{ id: 'svc-missing', definition, deployedAt: 1 }], 2, 'test');
    const failed = await waitFor('the service failed', () => {
      const s = t.status('svc-missing');
      return s?.state === 'failed' ? s : undefined;
    }, 20_000);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(failed.reason).toMatch(/manifest unknown|not found/);
    expect(failed.reason).toContain(image);
    expect(failed.replicas[0]?.restartCount).toBe(0);

    // The operator pushes the image and deploys again (the gateway sends a new deployed_at).
    await reg.push(TEST_IMAGE_HTTP, repo);
    const redeployed = Date.now();
    t.agent.reconciler.applyDesired([{ id: 'svc-missing', definition, deployedAt: 2 }], 3, 'test');
    await waitFor('the service running after the new deploy', () => t.status('svc-missing')?.state === 'running', 30_000);
    // Well inside restart.failed_retry (0 in the test config: it would never retry by itself).
    expect(Date.now() - redeployed).toBeLessThan(30_000);
  }, 90_000);
});
