import { execFile } from 'node:child_process';
import { writeFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { ServiceDefinition } from '../../src/service-definition/types.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import { engineCall, newTestRunId, removeTestNetwork, requireDocker, TEST_RUN_LABEL } from '../helpers/docker.js';
import { ensureTestImages } from '../helpers/test-images.js';
import { startTestAgent, tempDir, testConfig, type TestAgent } from '../helpers/agent-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { sweepByLabel, inspect, type InspectInfo } from '../helpers/engine.js';
import { testDefinition } from '../helpers/test-definition.js';

const exec = promisify(execFile);
const docker = await requireDocker('deploy engine integration tests');

const spec = testDefinition;

async function httpGet(host: string, port: number, p: string): Promise<{ status: number; body: string }> {
  const res = await request(`http://${host}:${port}${p}`, { signal: AbortSignal.timeout(5_000) });
  return { status: res.statusCode, body: await res.body.text() };
}

/** restart.failed_retry of this file's agent: long enough to see that a failed replica is not restarted hot. */
const FAILED_RETRY_MS = 6_000;

describe.skipIf(!docker)('deploy engine on the real Docker Engine', () => {
  const runId = newTestRunId('engine');
  let t: TestAgent;
  let dataDir: string;
  let bystander: string;
  let bystanderStartedAt: string;
  const services = new Map<string, ServiceDefinition>();
  let revision = 0;
  const apply = () => t.agent.reconciler.applyDesired([...services].map(([id, s]) => ({ id, definition: s })), ++revision, 'test');
  const ready = (id: string, n: number) => waitFor(`${id} running with ${n} ready`, () => {
    const s = t.status(id);
    return s?.state === 'running' && s.readyReplicas === n ? s : undefined;
  }, 60_000);

  beforeAll(async () => {
    await ensureTestImages();
    dataDir = await tempDir('engine-data');
    await writeFile(path.join(dataDir, 'hello.txt'), 'hello from the host\n');
    const stateDir = await tempDir('engine-state');
    const config = testConfig(runId, stateDir, { volumes: { allowedRoots: [dataDir] } });
    t = await startTestAgent({ ...config, restart: { ...config.restart, failedRetryMs: FAILED_RETRY_MS } });
    // A container that is not ours, on the same engine: it must survive everything below.
    const { stdout } = await exec('docker', ['run', '-d', '--label', `${TEST_RUN_LABEL}=${runId}`, '--label', `${Labels.SERVICE_ID}=imposter`, 'cyberun-test/busybox-http:1']);
    bystander = stdout.trim();
    bystanderStartedAt = (await inspect(bystander))!.State.StartedAt;
  });

  afterAll(async () => {
    await t?.stop();
    await sweepByLabel(`${Labels.AGENT_ID}=${t?.config.agentId}`);
    await sweepByLabel(`${TEST_RUN_LABEL}=${runId}`);
    await removeTestNetwork(t?.config.docker.network ?? '');
  });

  it('runs 3 replicas with env and an allowed bind mount, named, labelled and networked as specified', async () => {
    services.set('svc-web', spec('web', {
      replica_count: 3,
      env_config: [{ env_name: 'GREETING', env_value: 'hi' }, { env_name: 'NVIDIA_VISIBLE_DEVICES', env_value: 'all' }],
      volume_config: [{ host_path: dataDir, container_path: '/data' }],
    }));
    apply();
    const status = await ready('svc-web', 3);
    expect(status.replicas.map((r) => r.phase)).toEqual(['ready', 'ready', 'ready']);
    for (const r of status.replicas) {
      const info = (await inspect(r.containerId!))!;
      expect(info.Name).toBe(`/cyberun-web-${r.index}`);
      expect(info.Config.Labels).toMatchObject({
        [Labels.MANAGED]: 'true',
        [Labels.AGENT_ID]: t.config.agentId,
        [Labels.SERVICE_ID]: 'svc-web',
        [Labels.SERVICE_SLUG]: 'web',
        [Labels.REPLICA]: String(r.index),
      });
      expect(Object.keys(info.NetworkSettings.Networks)).toEqual([t.config.docker.network]);
      expect(info.HostConfig.SecurityOpt).toContain('no-new-privileges');
      expect(info.HostConfig.Privileged).toBe(false);
      // env_config can never widen GPU access
      expect(info.Config.Env).toContain('NVIDIA_VISIBLE_DEVICES=void');
      expect(info.Config.Env).not.toContain('NVIDIA_VISIBLE_DEVICES=all');
      const env = await httpGet(info.NetworkSettings.Networks[t.config.docker.network]!.IPAddress, 8080, '/cgi-bin/env');
      expect(env.body).toContain('GREETING=hi');
      const { stdout } = await exec('docker', ['exec', r.containerId!, 'cat', '/data/hello.txt']);
      expect(stdout).toBe('hello from the host\n');
    }
    expect(t.agent.reconciler.readyEndpoints('svc-web')).toHaveLength(3);
  });

  it('rolls an env change one replica at a time, never dropping to zero ready', async () => {
    const before = t.status('svc-web')!;
    const oldIds = new Set(before.replicas.map((r) => r.containerId));
    let minReady = Infinity;
    let maxContainers = 0;
    const sampler = setInterval(() => {
      minReady = Math.min(minReady, t.agent.reconciler.readyEndpoints('svc-web').length);
      void engineCall('GET', `/containers/json?all=true&filters=${encodeURIComponent(JSON.stringify({ label: [`${Labels.SERVICE_ID}=svc-web`] }))}`)
        .then((a) => { maxContainers = Math.max(maxContainers, (JSON.parse(a.body) as unknown[]).length); })
        .catch(() => undefined);
    }, 50);
    services.set('svc-web', { ...services.get('svc-web')!, env_config: [{ env_name: 'GREETING', env_value: 'hello' }] });
    apply();
    const after = await waitFor('rollout finished', () => {
      const s = t.status('svc-web');
      return s?.state === 'running' && s.replicas.length === 3 && s.replicas.every((r) => r.containerId && !oldIds.has(r.containerId)) ? s : undefined;
    }, 90_000);
    // The surge containers get their stable names back once the old ones are gone.
    await waitFor('stable names after the rollout', async () => {
      const names = await Promise.all(after.replicas.map(async (r) => (await inspect(r.containerId!))?.Name));
      return names.every((n, i) => n === `/cyberun-web-${after.replicas[i]!.index}`);
    }, 10_000);
    clearInterval(sampler);
    expect(minReady).toBeGreaterThanOrEqual(2);
    expect(maxContainers).toBeLessThanOrEqual(4);
    for (const r of after.replicas) {
      const info = (await inspect(r.containerId!))!;
      expect(info.Config.Env).toContain('GREETING=hello');
    }
  });

  it('restarts a killed replica after backoff, in the same container', async () => {
    const r0 = t.status('svc-web')!.replicas[0]!;
    const startedBefore = (await inspect(r0.containerId!))!.State.StartedAt;
    await exec('docker', ['kill', r0.containerId!]);
    const back = await waitFor('killed replica restarted and ready', async () => {
      const info = await inspect(r0.containerId!);
      const s = t.status('svc-web');
      const rep = s?.replicas.find((x) => x.index === 0);
      return info?.State.Running && info.State.StartedAt !== startedBefore && rep?.phase === 'ready' ? rep : undefined;
    }, 30_000);
    expect(back.restartCount).toBeGreaterThanOrEqual(1);
  });

  it('restarts a replica whose health starts failing after it was ready', async () => {
    const r1 = t.status('svc-web')!.replicas.find((r) => r.index === 1)!;
    const info = (await inspect(r1.containerId!))!;
    const ip = info.NetworkSettings.Networks[t.config.docker.network]!.IPAddress;
    await httpGet(ip, 8080, '/cgi-bin/fail-health');
    expect((await httpGet(ip, 8080, '/health')).status).toBe(404);
    const seen = await waitFor('unhealthy phase reported', () => t.reports.find((s) => s.serviceId === 'svc-web' && s.replicas.some((x) => x.index === 1 && x.phase === 'unhealthy')), 20_000);
    expect(seen.replicas.find((x) => x.index === 1)?.reason).toContain('health check failed');
    await waitFor('replica healthy again after restart', async () => {
      const now = await inspect(r1.containerId!);
      return now?.State.Running && now.State.StartedAt !== info.State.StartedAt && (await httpGet(ip, 8080, '/health').catch(() => ({ status: 0 }))).status === 200;
    }, 30_000);
  });

  it('turns a container that exits at once into failed, with exit code and last log lines, without a hot loop', async () => {
    services.set('svc-crash', spec('crasher', { env_config: [{ env_name: 'MODE', env_value: 'crash' }, { env_name: 'EXIT_CODE', env_value: '7' }] }));
    apply();
    const failed = await waitFor('crasher failed', () => {
      const s = t.status('svc-crash');
      return s?.state === 'failed' && s.replicas[0]?.reason?.includes('last log lines') ? s : undefined;
    }, 60_000);
    const reason = failed.replicas[0]!.reason!;
    expect(reason).toContain('exited with code 7');
    expect(reason).toContain('fatal: config missing');
    // No hot loop: the container is not started again once failed.
    const id = failed.replicas[0]!.containerId!;
    const finishedAt = (await inspect(id))!.State.FinishedAt;
    await new Promise((r) => setTimeout(r, 2_500));
    const later = (await inspect(id))!;
    expect(later.State.Running).toBe(false);
    expect(later.State.FinishedAt).toBe(finishedAt);
    expect(failed.replicas[0]!.restartCount).toBeLessThanOrEqual(t.config.restart.crashLoopLimit);
    expect(reason).toMatch(/^crash loop \(next try at \d{4}-\d\d-\d\dT[\d:.]+Z\): exited with code 7/);
  });

  it('tries a failed replica again after restart.failed_retry, and fails it again when it still crashes', async () => {
    const first = t.status('svc-crash')!.replicas[0]!;
    const id = first.containerId!;
    const finishedAt = (await inspect(id))!.State.FinishedAt;
    // Started again in the same container (it ran and died once more), then failed again.
    await waitFor('crasher retried', async () => (await inspect(id))!.State.FinishedAt !== finishedAt, FAILED_RETRY_MS + 15_000);
    const again = await waitFor('crasher failed again', () => {
      const r = t.status('svc-crash')?.replicas[0];
      return r?.phase === 'failed' && r.restartCount > first.restartCount && r.reason?.includes('last log lines') ? r : undefined;
    }, 15_000);
    expect(again.reason).toContain('exited with code 7');
    expect(again.reason).not.toBe(first.reason); // a later next try
  });

  it.each([
    ['outside the allowlist', async () => tempDir('outside'), 'is outside the allowed roots'],
    ['the Docker socket', async () => '/var/run/docker.sock', 'is never mountable'],
    ['a symlink inside an allowed root that points to /etc', async () => {
      const link = path.join(dataDir, `etc-link-${Date.now()}`);
      await symlink('/etc', link);
      return link;
    }, 'resolves to "/etc"'],
  ])('refuses a volume %s with a clear reason and starts nothing', async (_name, hostPath, expected) => {
    const id = `svc-vol-${Math.random().toString(36).slice(2, 7)}`;
    services.set(id, spec(`vol-${id.slice(-5)}`, { volume_config: [{ host_path: await hostPath(), container_path: '/x' }] }));
    apply();
    const s = await waitFor('volume refusal reported', () => {
      const st = t.status(id);
      return st?.state === 'failed' ? st : undefined;
    }, 20_000);
    expect(s.replicas[0]?.phase).toBe('rejected');
    expect(s.replicas[0]?.reason).toContain(expected);
    expect(s.replicas[0]?.reason).toContain('volume_config[0].host_path');
    const list = await engineCall('GET', `/containers/json?all=true&filters=${encodeURIComponent(JSON.stringify({ label: [`${Labels.SERVICE_ID}=${id}`] }))}`);
    expect(JSON.parse(list.body)).toEqual([]);
    services.delete(id);
    apply();
  });

  it('removes a service that is no longer desired, and scales down', async () => {
    services.delete('svc-crash');
    services.set('svc-web', { ...services.get('svc-web')!, replica_count: 2 });
    apply();
    await waitFor('crasher gone and web scaled to 2', async () => {
      const crash = await engineCall('GET', `/containers/json?all=true&filters=${encodeURIComponent(JSON.stringify({ label: [`${Labels.SERVICE_ID}=svc-crash`] }))}`);
      const web = await engineCall('GET', `/containers/json?all=true&filters=${encodeURIComponent(JSON.stringify({ label: [`${Labels.SERVICE_ID}=svc-web`] }))}`);
      return (JSON.parse(crash.body) as unknown[]).length === 0 && (JSON.parse(web.body) as unknown[]).length === 2;
    }, 30_000);
    expect(t.status('svc-crash')).toBeUndefined();
    await ready('svc-web', 2);
  });

  it('never touched the container without our labels', async () => {
    const info: InspectInfo = (await inspect(bystander))!;
    expect(info.State.Running).toBe(true);
    expect(info.State.StartedAt).toBe(bystanderStartedAt);
  });
});
