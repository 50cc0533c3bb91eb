import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent.js';
import type { AgentConfig } from '../../src/config/types.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import { createLogger } from '../../src/log.js';
import { DockerRuntime } from '../../src/runtime/docker-runtime.js';
import type { ServiceDefinition } from '../../src/service-definition/types.js';
import { DOCKER_SOCKET, engineCall, newTestRunId, removeTestNetwork, requireDocker } from '../helpers/docker.js';
import { sweepByLabel, listByLabel } from '../helpers/engine.js';
import { noGpuInventory, tempDir, testConfig } from '../helpers/agent-harness.js';
import { requireRegistry, startLocalRegistry, type LocalRegistry } from '../helpers/local-registry.js';
import { parsePromText } from '../helpers/prom-text.js';
import { testDefinition } from '../helpers/test-definition.js';
import { ensureTestImages, TEST_IMAGE_HTTP } from '../helpers/test-images.js';
import { waitFor } from '../helpers/wait-for.js';

const exec = promisify(execFile);
const docker = await requireDocker('image GC integration tests');
const registry = requireRegistry(docker, 'image GC tests');

/** A DockerRuntime that records every image removal it is asked for. */
class RecordingRuntime extends DockerRuntime {
  readonly removals: string[] = [];
  override async removeImage(ref: string): Promise<void> {
    this.removals.push(ref);
    await super.removeImage(ref);
  }
}

const imageExists = async (ref: string): Promise<boolean> => (await engineCall('GET', `/images/${encodeURIComponent(ref)}/json`)).status === 200;

/**
 * Image GC on the real engine, with thresholds that make it collect at once (high 0 %, low 0 %,
 * no minimum age). Every image it could touch is made for this run: four images built from the
 * test image (one LABEL each, so four image ids), pushed to a real registry on loopback and removed
 * locally. The agent pulls three of them for services; the test pulls the fourth itself. Only the
 * unused, undesired image the agent pulled may go, and only through its own reference.
 */
describe.skipIf(!docker || !registry)('image GC on the real engine', () => {
  const runId = newTestRunId('gc');
  const short = runId.slice(-6);
  const logger = createLogger({ level: (process.env['TEST_LOG_LEVEL'] as 'warn' | undefined) ?? 'silent' });
  let reg: LocalRegistry;
  let config: AgentConfig;
  let runtime: RecordingRuntime;
  let agent: Agent;
  const refs: Record<'unused' | 'running' | 'stopped' | 'foreign', string> = { unused: '', running: '', stopped: '', foreign: '' };
  const built: string[] = [];
  let revision = 0;
  const services = new Map<string, ServiceDefinition>();
  const apply = () => agent.reconciler.applyDesired([...services].map(([id, definition]) => ({ id, definition })), ++revision, 'test');
  const status = (id: string) => agent.reconciler.statusSnapshot().find((s) => s.serviceId === id);
  const start = async () => {
    runtime = new RecordingRuntime({ socketPath: DOCKER_SOCKET, host: undefined, apiTimeoutMs: 30_000, addressing: 'ip', logger });
    agent = await Agent.start({ config, logger, runtime, readInventory: async () => noGpuInventory });
  };

  beforeAll(async () => {
    await ensureTestImages();
    reg = await startLocalRegistry();
    for (const name of Object.keys(refs) as (keyof typeof refs)[]) {
      const tag = `cyberun-gc-${short}-${name}:1`;
      await exec('sh', ['-c', `printf 'FROM ${TEST_IMAGE_HTTP}\\nLABEL cloud.cyberun.test-gc=${runId}-${name}\\n' | docker build -q -t ${tag} -`], { timeout: 120_000 });
      built.push(tag);
      refs[name] = await reg.push(tag, `gc-${name}-${short}`);
      await exec('docker', ['rmi', tag]);
    }
    // The one image on the engine that the agent did not pull: pulled by the test itself.
    await exec('docker', ['pull', refs.foreign], { timeout: 120_000 });
    const base = testConfig(runId, await tempDir('gc-state'));
    config = {
      ...base,
      restart: { ...base.restart, crashLoopLimit: 1, failedRetryMs: 0 },
      imageGc: { enabled: true, highPercent: 0, lowPercent: 0, minAgeMs: 0, intervalMs: 300 },
    };
    await start();
  }, 240_000);

  afterAll(async () => {
    await agent?.stop();
    await sweepByLabel(`${Labels.AGENT_ID}=${config?.agentId}`);
    await reg?.close(); // after the sweep: it removes the images pulled from it, unused by then
    await removeTestNetwork(config?.docker.network ?? '');
    // Only what this run made.
    for (const ref of [...Object.values(refs), ...built]) if (ref) await exec('docker', ['rmi', ref]).catch(() => undefined);
  });

  it('removes the unused image the agent pulled; keeps the image in use, the stopped desired service’s image and the image it did not pull', async () => {
    services.set('gc-unused', testDefinition('gc-unused', { docker_image: refs.unused }));
    services.set('gc-running', testDefinition('gc-running', { docker_image: refs.running }));
    services.set('gc-stopped', testDefinition('gc-stopped', { docker_image: refs.stopped, env_config: [{ env_name: 'MODE', env_value: 'crash' }] }));
    apply();
    await waitFor('gc-unused and gc-running running', () => status('gc-unused')?.state === 'running' && status('gc-running')?.state === 'running', 60_000);
    await waitFor('gc-stopped failed (crash loop, never retried)', () => status('gc-stopped')?.state === 'failed', 60_000);
    // A desired service that is stopped and has no container at all: only "desired" protects its image.
    for (const id of await listByLabel(`${Labels.SERVICE_ID}=gc-stopped`)) await engineCall('DELETE', `/containers/${id}?force=true`);
    expect(await listByLabel(`${Labels.SERVICE_ID}=gc-stopped`)).toEqual([]);

    services.delete('gc-unused');
    apply();
    await waitFor('the unused image removed', async () => !(await imageExists(refs.unused)), 30_000);
    // Two more full checks: a collector that removes too much would show now.
    for (let i = 0; i < 2; i++) {
      agent.imageGc.trigger();
      await agent.imageGc.idle();
    }
    expect(runtime.removals).toEqual([refs.unused]);
    for (const kept of [refs.running, refs.stopped, refs.foreign, TEST_IMAGE_HTTP]) expect(await imageExists(kept), kept).toBe(true);

    const m = parsePromText(await agent.metrics.text());
    expect(m.value('cyberun_image_gc_removed_total')).toBe(1);
    expect(m.value('cyberun_image_gc_removed_bytes_total')).toBeGreaterThan(0);
    const disk = agent.statusView().disk;
    expect(disk?.path).toBe((JSON.parse((await engineCall('GET', '/info')).body) as { DockerRootDir: string }).DockerRootDir);
    expect(disk?.usedPercent).toBeGreaterThan(0);
    const record = JSON.parse(await readFile(path.join(config.stateDir, 'pulled-images.json'), 'utf8')) as { images: { ref: string; lastUsedAt: number }[] };
    expect(record.images.map((i) => i.ref).sort()).toEqual([refs.running, refs.stopped].sort());
  }, 180_000);

  it('after a restart the agent still knows which images it pulled: one it pulled before goes once unused', async () => {
    await agent.stop();
    await start();
    services.delete('gc-running');
    apply();
    await waitFor('the formerly running image removed by the new agent', async () => !(await imageExists(refs.running)), 30_000);
    expect(runtime.removals).toEqual([refs.running]);
    for (const kept of [refs.stopped, refs.foreign, TEST_IMAGE_HTTP]) expect(await imageExists(kept), kept).toBe(true);
  }, 120_000);
});
