import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Labels } from '../../src/domain/ownership-labels.js';
import { newTestRunId, removeTestNetwork, requireDocker, TEST_RUN_LABEL } from '../helpers/docker.js';
import { inspect, listByLabel, sweepByLabel } from '../helpers/engine.js';
import { startTestAgent, tempDir, testConfig, type TestAgent } from '../helpers/agent-harness.js';
import { testDefinition } from '../helpers/test-definition.js';
import { ensureTestImages, TEST_IMAGE_HTTP } from '../helpers/test-images.js';
import { waitFor } from '../helpers/wait-for.js';

const exec = promisify(execFile);
const docker = await requireDocker('slug recreated integration tests');

/**
 * Cyberun's way to change service_type or drop a credential is to delete a service and create it
 * again under the same slug. When that happens while the agent is down (or its state dir is reset),
 * the old replicas still hold the names `cyberun-<slug>-<i>` when the new service arrives.
 */
describe.skipIf(!docker)('a slug deleted and created again while its old replicas still exist', () => {
  const runId = newTestRunId('slug');
  let t: TestAgent | undefined;
  let config: ReturnType<typeof testConfig>;

  beforeAll(async () => {
    await ensureTestImages();
    config = testConfig(runId, await tempDir('slug-state'));
  });

  afterAll(async () => {
    await t?.stop();
    await sweepByLabel(`${Labels.AGENT_ID}=${config.agentId}`);
    await sweepByLabel(`${TEST_RUN_LABEL}=${runId}`);
    await removeTestNetwork(config.docker.network);
  });

  it('runs the new service within 30 s and removes the old replicas, without waiting for the orphan grace', async () => {
    t = await startTestAgent(config);
    t.agent.reconciler.applyDesired([{ id: 'svc-old', definition: testDefinition('again', { replica_count: 2 }) }], 1, 'test');
    await waitFor('the old service running', () => t?.status('svc-old')?.state === 'running', 60_000);
    const oldIds = await listByLabel(`${Labels.SERVICE_ID}=svc-old`);
    expect(oldIds).toHaveLength(2);
    await t.stop();

    // The agent comes back with a fresh state dir: the old service is unknown to it, so its
    // containers are orphans (grace 60 s in this config), and they hold both names.
    config = { ...config, stateDir: await tempDir('slug-state-fresh') };
    t = await startTestAgent(config);
    const started = Date.now();
    t.agent.reconciler.applyDesired([{ id: 'svc-new', definition: testDefinition('again', { replica_count: 2, env_config: [{ env_name: 'GREETING', env_value: 'new' }] }) }], 2, 'test');
    const running = await waitFor('the new service running', () => {
      const s = t?.status('svc-new');
      return s?.state === 'running' && s.readyReplicas === 2 ? s : undefined;
    }, 30_000);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(running.replicas.every((r) => r.restartCount === 0)).toBe(true);
    for (const id of oldIds) expect(await inspect(id)).toBeUndefined();
    const names = await Promise.all(running.replicas.map(async (r) => (await inspect(r.containerId ?? ''))?.Name));
    expect(names.sort()).toEqual(['/cyberun-again-0', '/cyberun-again-1']);
  }, 120_000);

  it('never touches a container that is not the agent\'s: the replica waits with a reason naming it', async () => {
    const { stdout } = await exec('docker', ['create', '--name', `cyberun-held-${runId.slice(-6)}-0`, '--label', `${TEST_RUN_LABEL}=${runId}`, TEST_IMAGE_HTTP]);
    const foreign = stdout.trim();
    const slug = `held-${runId.slice(-6)}`;
    t!.agent.reconciler.applyDesired(
      [
        { id: 'svc-new', definition: testDefinition('again', { replica_count: 2, env_config: [{ env_name: 'GREETING', env_value: 'new' }] }) },
        { id: 'svc-held', definition: testDefinition(slug) },
      ],
      3,
      'test',
    );
    const waiting = await waitFor('the replica waiting for its name', () => {
      const r = t?.status('svc-held')?.replicas[0];
      return r?.phase === 'pending' && r.reason?.includes(foreign.slice(0, 12)) ? r : undefined;
    }, 30_000);
    expect(waiting.reason).toContain('does not manage');
    expect(waiting.restartCount).toBe(0);
    expect(t!.status('svc-held')?.state).toBe('deploying');
    const info = await inspect(foreign);
    expect(info?.Name).toBe(`/cyberun-${slug}-0`);
    expect(info?.Config.Labels[Labels.MANAGED]).toBeUndefined();
  }, 60_000);
});
