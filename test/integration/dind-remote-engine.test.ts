import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { request } from 'undici';
import { Labels } from '../../src/domain/ownership-labels.js';
import type { ServiceDefinition } from '../../src/service-definition/types.js';
import { newTestRunId, requireDocker, sweepTestContainers } from '../helpers/docker.js';
import { ensureTestImages, TEST_IMAGE_HTTP } from '../helpers/test-images.js';
import { startTestAgent, tempDir, testConfig, type TestAgent } from '../helpers/agent-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { startDind, type Dind } from '../helpers/dind.js';

const docker = await requireDocker('docker-in-docker (remote engine) integration tests');

/**
 * The agent on the host drives a nested Docker Engine over tcp:// (as in a CI job with a dind
 * service): replicas are reachable only through ports published on the nested engine's address,
 * so `addressing: auto` must pick published ports.
 */
describe.skipIf(!docker)('agent → nested Docker Engine over DOCKER_HOST=tcp://', () => {
  const runId = newTestRunId('dind-a');
  let dind: Dind;
  let t: TestAgent;
  const spec: ServiceDefinition = {
    service_slug: 'nested-web',
    display_name: 'nested web',
    service_type: 'deployed',
    docker_image: TEST_IMAGE_HTTP,
    exposed_port: 8080,
    health_path: '/health',
    env_config: [{ env_name: 'GREETING', env_value: 'from-the-nested-engine' }],
    volume_config: [],
    required_labels: [],
    gpu_count: 0,
    replica_count: 2,
  };

  beforeAll(async () => {
    await ensureTestImages();
    dind = await startDind(runId);
    await dind.loadImage(TEST_IMAGE_HTTP);
    const base = testConfig(runId, await tempDir('dind-a-state'));
    t = await startTestAgent({ ...base, docker: { ...base.docker, socketPath: '/nonexistent.sock', host: dind.host, addressing: 'auto', network: 'cyberun' } });
  }, 180_000);

  afterAll(async () => {
    await t?.stop();
    await dind?.remove();
    await sweepTestContainers(runId);
    if (t) await rm(t.config.stateDir, { recursive: true, force: true });
  });

  it('deploys into the nested engine, probes through published ports, serves a request there', async () => {
    t.agent.reconciler.applyDesired([{ id: 'svc-nested', definition: spec }], 1, 'test');
    const status = await waitFor('nested-web running with 2 ready', () => {
      const s = t.status('svc-nested');
      return s?.state === 'running' && s.readyReplicas === 2 ? s : undefined;
    }, 90_000);
    // The containers live in the nested engine, not on the host's.
    const inner = (await dind.docker(['ps', '-q', '--filter', `label=${Labels.SERVICE_ID}=svc-nested`])).split('\n').filter(Boolean);
    expect(inner).toHaveLength(2);
    const endpoints = t.agent.reconciler.readyEndpoints('svc-nested');
    expect(endpoints).toHaveLength(2);
    for (const ep of endpoints) {
      expect(ep.host).toBe(dind.ip);
      expect(ep.port).not.toBe(8080);
      // What the proxy does with a ready endpoint: one request through the published port.
      const res = await request(`http://${ep.host}:${ep.port}/cgi-bin/env`, { signal: AbortSignal.timeout(5_000) });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toContain('GREETING=from-the-nested-engine');
    }
    expect(status.replicas.map((r) => r.phase)).toEqual(['ready', 'ready']);
  });

  it('undeploys cleanly: every container it made in the nested engine is gone', async () => {
    t.agent.reconciler.applyDesired([], 2, 'test');
    await waitFor('nested-web gone', () => t.status('svc-nested') === undefined, 60_000);
    expect(await dind.docker(['ps', '-aq', '--filter', `label=${Labels.AGENT_ID}=${t.config.agentId}`])).toBe('');
  });
});
