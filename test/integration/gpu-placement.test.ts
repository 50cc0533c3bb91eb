import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readInventory } from '../../src/host/inventory.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import type { ServiceDefinition } from '../../src/service-definition/types.js';
import { newTestRunId, requireDocker } from '../helpers/docker.js';
import { ensureTestImages } from '../helpers/test-images.js';
import { startTestAgent, tempDir, tearDown, testConfig, type TestAgent } from '../helpers/agent-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { inspect, listByLabel } from '../helpers/engine.js';
import { FAKE_BIN_DIR, fixtureHostDir } from '../fixtures/hosts/gpu-devices.js';
import { testDefinition } from '../helpers/test-definition.js';

const docker = await requireDocker('GPU placement integration tests');

function spec(slug: string, gpuCount: number): ServiceDefinition {
  return testDefinition(slug, { gpu_count: gpuCount, env_config: [{ env_name: 'CUDA_VISIBLE_DEVICES', env_value: '0,1,2,3' }] });
}

/**
 * The fake 4x A100 host (captured nvidia-smi output served by test/fixtures/bin) on the real engine.
 * This engine has no NVIDIA runtime, so GPU containers are created with their DeviceRequests and
 * then fail to start: exactly what these tests read back.
 */
describe.skipIf(!docker)('GPU placement on the real engine with a fake 4-GPU host', () => {
  const runId = newTestRunId('gpu');
  let t: TestAgent;
  const services = new Map<string, ServiceDefinition>();
  let revision = 0;
  const apply = () => t.agent.reconciler.applyDesired([...services].map(([id, s]) => ({ id, definition: s })), ++revision, 'test');
  const gpusOf = async (serviceId: string) => {
    const ids = await listByLabel(`${Labels.SERVICE_ID}=${serviceId}`);
    const infos = await Promise.all(ids.map((id) => inspect(id)));
    return infos.flatMap((i) => i?.HostConfig.DeviceRequests ?? []).flatMap((d) => d.DeviceIDs ?? []);
  };

  beforeAll(async () => {
    await ensureTestImages();
    const inventory = await readInventory({
      detect: 'auto',
      timeoutMs: 15_000,
      env: { ...process.env, PATH: `${FAKE_BIN_DIR}:${process.env['PATH'] ?? ''}`, CYBERUN_FAKE_GPU_HOST: fixtureHostDir('a100x4') },
    });
    expect(inventory.gpus.map((g) => g.id)).toEqual(['0', '1', '2', '3']);
    expect(inventory.hardwareLabels).toContain('gpu-a100');
    t = await startTestAgent(testConfig(runId, await tempDir('gpu-state'), { gpu: { detect: 'auto', deviceStyle: 'device-ids', inventoryRefreshMs: 600_000, driverCapabilities: ['compute', 'utility'] } }), inventory);
  });

  afterAll(() => tearDown(t));

  it('gives two gpu_count 2 services disjoint device ids, reports the start failure, and keeps a third pending with a reason', async () => {
    services.set('gpu-a', spec('llama', 2));
    apply();
    await waitFor('llama holds 2 GPUs', async () => (await gpusOf('gpu-a')).length === 2);
    services.set('gpu-b', spec('sdxl', 2));
    apply();
    await waitFor('sdxl holds 2 GPUs', async () => (await gpusOf('gpu-b')).length === 2);
    services.set('gpu-c', spec('whisper', 2));
    services.set('no-gpu', spec('cpu-only', 0));
    apply();

    const a = await gpusOf('gpu-a');
    const b = await gpusOf('gpu-b');
    expect(a.filter((id) => b.includes(id))).toEqual([]);
    expect([...a, ...b].sort()).toEqual(['0', '1', '2', '3']);
    const [aInfo] = await Promise.all((await listByLabel(`${Labels.SERVICE_ID}=gpu-a`)).map((id) => inspect(id)));
    expect(aInfo?.HostConfig.DeviceRequests?.[0]).toMatchObject({ Driver: 'nvidia', DeviceIDs: a, Capabilities: [['gpu']] });
    expect(aInfo?.Config.Env).toContain(`NVIDIA_VISIBLE_DEVICES=${a.join(',')}`);
    expect(aInfo?.Config.Env.some((e) => e.startsWith('CUDA_VISIBLE_DEVICES='))).toBe(false);

    const startFailure = await waitFor('the start failure as the replica reason', () => {
      const r = t.status('gpu-a')?.replicas[0];
      return r?.reason?.includes('could not select device driver') ? r : undefined;
    }, 20_000);
    expect(['backoff', 'crashed', 'failed']).toContain(startFailure.phase);
    expect(startFailure.reason).not.toContain('answered HTTP'); // the engine's own words, not our transport's

    const pending = await waitFor('whisper pending', () => {
      const r = t.status('gpu-c')?.replicas[0];
      return r?.phase === 'pending' ? r : undefined;
    }, 20_000);
    expect(pending.reason).toMatch(/waiting for 2 GPUs/);
    expect(pending.reason).toContain('llama');
    expect(pending.reason).toContain('sdxl');
    expect(await gpusOf('gpu-c')).toEqual([]);

    // The agent keeps running: the GPU-less service becomes ready, GPU access switched off.
    const cpu = await waitFor('cpu-only ready', () => (t.status('no-gpu')?.state === 'running' ? t.status('no-gpu') : undefined), 30_000);
    const cpuInfo = await inspect(cpu.replicas[0]!.containerId!);
    expect(cpuInfo?.Config.Env).toContain('NVIDIA_VISIBLE_DEVICES=void');
    expect(cpuInfo?.HostConfig.DeviceRequests ?? []).toEqual([]);
  });

  it('starts the pending replica on the freed GPUs once a holder goes away', async () => {
    const freed = await gpusOf('gpu-a');
    services.delete('gpu-a');
    apply();
    await waitFor('whisper got the freed GPUs', async () => {
      const got = await gpusOf('gpu-c');
      return got.length === 2 && got.every((id) => freed.includes(id));
    }, 30_000);
    expect((await gpusOf('gpu-b')).filter((id) => freed.includes(id))).toEqual([]);
  });

  it('a gpu_count larger than the host is rejected, not pending', async () => {
    services.set('gpu-huge', spec('huge', 8));
    apply();
    const r = await waitFor('huge rejected', () => {
      const s = t.status('gpu-huge');
      return s?.replicas[0]?.phase === 'rejected' ? s : undefined;
    });
    expect(r.state).toBe('failed');
    expect(r.replicas[0]?.reason).toMatch(/gpu_count 8 can never fit/);
    expect(await gpusOf('gpu-huge')).toEqual([]);
  });
});
