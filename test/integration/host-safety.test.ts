import { execFile } from 'node:child_process';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent.js';
import { readInventory } from '../../src/host/inventory.js';
import { createLogger } from '../../src/log.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import type { HostInventory } from '../../src/host/types.js';
import type { ServiceDefinition } from '../../src/service-definition/types.js';
import { DockerRuntime } from '../../src/runtime/docker-runtime.js';
import { newTestRunId, removeTestNetwork, requireDocker } from '../helpers/docker.js';
import { inspect, listByLabel, sweepByLabel } from '../helpers/engine.js';
import { tempDir, testConfig } from '../helpers/agent-harness.js';
import { startGatedRelay, type GatedRelay } from '../helpers/gated-relay.js';
import { requireRegistry, startLocalRegistry, type LocalRegistry } from '../helpers/local-registry.js';
import { testDefinition } from '../helpers/test-definition.js';
import { ensureTestImages, TEST_IMAGE_HTTP } from '../helpers/test-images.js';
import { waitFor } from '../helpers/wait-for.js';
import { FAKE_BIN_DIR, fixtureHostDir } from '../fixtures/hosts/gpu-devices.js';

const exec = promisify(execFile);
const docker = await requireDocker('host safety integration tests');
const registry = requireRegistry(docker, 'host safety tests');

/** GPU-related names a definition may try to set; none may reach a container. */
const GPU_ENV_NAMES = [
  'NVIDIA_VISIBLE_DEVICES',
  'NVIDIA_DRIVER_CAPABILITIES',
  'NVIDIA_REQUIRE_CUDA',
  'NVIDIA_DISABLE_REQUIRE',
  'NVIDIA_GDS',
  'NVIDIA_MOFED',
  'NVIDIA_NVSWITCH',
  'NVIDIA_GDRCOPY',
  'NVIDIA_IMEX_CHANNELS',
  'NVIDIA_MIG_CONFIG_DEVICES',
  'NVIDIA_MIG_MONITOR_DEVICES',
  'NVIDIA_REQUIRE_DRIVER',
  'NVIDIA_PRODUCT_NAME',
  'NVIDIA_CTK_LIBCUDA_DIR',
  'nvidia_visible_devices',
  'CUDA_VISIBLE_DEVICES',
  'CUDA_DEVICE_ORDER',
  'ROCR_VISIBLE_DEVICES',
  'HIP_VISIBLE_DEVICES',
  'GPU_DEVICE_ORDINAL',
  'ZE_AFFINITY_MASK',
  'ONEAPI_DEVICE_SELECTOR',
];

/**
 * What a service definition can do to the host, on the real engine: volumes judged and resolved
 * (the swap of a checked directory for a link, during a pull held by a gated relay in front of a
 * real registry, and between create and start), GPU env names dropped, the operator's container
 * defaults read back from `docker inspect`, registries outside pull.allowed_registries refused and
 * a `:latest` pulled again on re-create. A fake 4-GPU host (captured nvidia-smi) gives GPU services.
 */
describe.skipIf(!docker || !registry)('host safety on the real engine', () => {
  const runId = newTestRunId('hostsafe');
  let agent: Agent;
  let reg: LocalRegistry;
  let relay: GatedRelay;
  let work: string;
  let outside: string;
  let stateDir: string;
  let agentId: string;
  let network: string;
  /** Called by the runtime between create and start (the readback test swaps a directory there). */
  let beforeStart: (() => Promise<void>) | undefined;
  const services = new Map<string, ServiceDefinition>();
  let revision = 0;
  const apply = (deployedAt?: number) =>
    agent.reconciler.applyDesired([...services].map(([id, definition]) => ({ id, definition, ...(deployedAt === undefined ? {} : { deployedAt }) })), ++revision, 'test');
  const status = (id: string) => agent.reconciler.statusSnapshot().find((r) => r.serviceId === id);
  /** A service the host refuses: every replica `rejected` (the service itself reads `failed`), with the reason. */
  const rejectedReason = (id: string) =>
    waitFor(`${id} rejected`, () => {
      const replica = status(id)?.replicas[0];
      return replica?.phase === 'rejected' ? (replica.reason ?? '') : undefined;
    }, 60_000);
  const containersOf = async (id: string) => (await Promise.all((await listByLabel(`${Labels.SERVICE_ID}=${id}`)).map((c) => inspect(c)))).filter((c) => c !== undefined);

  beforeAll(async () => {
    await ensureTestImages();
    reg = await startLocalRegistry();
    const [regHost, regPort] = reg.host.split(':');
    relay = await startGatedRelay(regHost ?? '127.0.0.1', Number(regPort));
    work = await tempDir('hostsafe-root');
    outside = await tempDir('hostsafe-outside');
    stateDir = path.join(work, 'state');
    await mkdir(stateDir);
    const inventory: HostInventory = await readInventory({
      detect: 'auto',
      timeoutMs: 15_000,
      env: { ...process.env, PATH: `${FAKE_BIN_DIR}:${process.env['PATH'] ?? ''}`, CYBERUN_FAKE_GPU_HOST: fixtureHostDir('a100x4') },
    });
    const base = testConfig(runId, stateDir);
    const config = {
      ...base,
      volumes: { allowedRoots: [work] },
      gpu: { ...base.gpu, detect: 'auto' as const, inventoryRefreshMs: 600_000 },
      pull: { ...base.pull, allowedRegistries: ['docker.io', reg.host, relay.host] },
    };
    agentId = config.agentId;
    network = config.docker.network;
    const logger = createLogger({ level: config.logLevel });
    const real = new DockerRuntime({ socketPath: config.docker.socketPath, host: undefined, tls: undefined, apiTimeoutMs: 30_000, addressing: 'ip', logger });
    const runtime = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === 'startContainer') {
          return async (id: string) => {
            const hook = beforeStart;
            beforeStart = undefined;
            await hook?.();
            return target.startContainer(id);
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    agent = await Agent.start({ config, logger, runtime, readInventory: async () => inventory });
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await sweepByLabel(`${Labels.AGENT_ID}=${agentId}`);
    // After the sweep: each removes the images pulled through it, unused by then.
    await relay?.close();
    await reg?.close();
    await removeTestNetwork(network);
  });

  it('mounts a host_path reached through a link from the resolved path', async () => {
    await mkdir(path.join(work, 'models-v1'));
    await symlink(path.join(work, 'models-v1'), path.join(work, 'models'));
    services.set('svc-link', testDefinition('link', { volume_config: [{ host_path: path.join(work, 'models'), container_path: '/models' }] }));
    apply();
    await waitFor('the service running', () => status('svc-link')?.state === 'running', 60_000);
    const [info] = await containersOf('svc-link');
    expect(info?.Mounts.filter((m) => m.Type === 'bind').map((m) => [m.Source, m.Destination])).toEqual([[path.join(work, 'models-v1'), '/models']]);
    services.delete('svc-link');
    apply();
  }, 90_000);

  it('refuses a directory swapped for a link to / while the image is pulled: nothing outside the roots is mounted', async () => {
    const repo = `swap-${runId.slice(-6)}`;
    await reg.push(TEST_IMAGE_HTTP, repo);
    const data = path.join(work, 'data');
    await mkdir(data);
    services.set('svc-swap', testDefinition('swap', { docker_image: `${relay.host}/${repo}:1`, volume_config: [{ host_path: data, container_path: '/data' }] }));
    apply();
    // The checks passed and the pull has begun: the engine's request is held at the relay.
    await waitFor('the pull held at the relay', () => relay.held() > 0, 30_000);
    await rename(data, path.join(work, 'data-before'));
    await symlink('/', data);
    relay.open();
    expect(await rejectedReason('svc-swap')).toContain(`volume_config[0].host_path "${data}" (resolves to "/") is never mountable`);
    const mounted = (await containersOf('svc-swap')).flatMap((c) => c.Mounts.map((m) => m.Source));
    expect(mounted.filter((source) => !source.startsWith(`${work}/`))).toEqual([]);
    services.delete('svc-swap');
    apply();
  }, 120_000);

  it('stops and removes a started replica whose bind source was swapped for a link between create and start', async () => {
    const data = path.join(work, 'late');
    await mkdir(data);
    await writeFile(path.join(outside, 'secret'), 'host secret');
    beforeStart = async () => {
      await rename(data, path.join(work, 'late-before'));
      await symlink(outside, data);
    };
    services.set('svc-late', testDefinition('late', { volume_config: [{ host_path: data, container_path: '/data' }] }));
    apply();
    expect(await rejectedReason('svc-late')).toContain(`is outside the allowed roots [${work}]`);
    await waitFor('no container of the service left', async () => (await containersOf('svc-late')).length === 0, 30_000);
    services.delete('svc-late');
    apply();
  }, 90_000);

  it('refuses the agent\'s state dir inside an allowed root, and answers a missing and an existing path outside the roots alike', async () => {
    services.set('svc-state', testDefinition('state', { volume_config: [{ host_path: stateDir, container_path: '/state' }] }));
    const missing = path.join(outside, 'no-such-dir');
    services.set('svc-missing', testDefinition('missing', { volume_config: [{ host_path: missing, container_path: '/x' }] }));
    services.set('svc-existing', testDefinition('existing', { volume_config: [{ host_path: outside, container_path: '/x' }] }));
    apply();
    const reasonOf = rejectedReason;
    expect(await reasonOf('svc-state')).toContain(`volume_config[0].host_path "${stateDir}" is never mountable: ${stateDir} is refused`);
    const a = (await reasonOf('svc-missing')) ?? '';
    const b = (await reasonOf('svc-existing')) ?? '';
    expect(a.replace(missing, '<path>')).toBe(b.replace(outside, '<path>'));
    expect(a).not.toMatch(/exist/);
    for (const id of ['svc-state', 'svc-missing', 'svc-existing']) services.delete(id);
    apply();
  }, 60_000);

  it('lets none of 22 GPU env names through env_config nor the image\'s ENV; the agent sets its own', async () => {
    expect(GPU_ENV_NAMES.length).toBeGreaterThanOrEqual(20);
    const image = `cyberun-test/nvidia-all-${runId.slice(-6)}:1`;
    const { stdout } = await exec('docker', ['create', TEST_IMAGE_HTTP]);
    await exec('docker', ['commit', '-c', 'ENV NVIDIA_DRIVER_CAPABILITIES=all', '-c', 'ENV NVIDIA_VISIBLE_DEVICES=all', stdout.trim(), image]);
    await exec('docker', ['rm', stdout.trim()]);
    try {
      const env_config = [...GPU_ENV_NAMES.map((env_name) => ({ env_name, env_value: 'all' })), { env_name: 'MODEL', env_value: 'llama' }];
      services.set('svc-env', testDefinition('env', { docker_image: image, env_config }));
      apply();
      const running = await waitFor('the service running', () => (status('svc-env')?.state === 'running' ? status('svc-env') : undefined), 60_000);
      const [info] = await containersOf('svc-env');
      const env = info?.Config.Env ?? [];
      const leaked = env.filter((e) => GPU_ENV_NAMES.some((n) => e === `${n}=all`));
      expect(leaked).toEqual([]);
      expect(env).toContain('MODEL=llama');
      expect(env).toContain('NVIDIA_VISIBLE_DEVICES=void');
      expect(env).toContain('NVIDIA_DRIVER_CAPABILITIES=compute,utility');
      expect(running.warnings.join(' ')).toContain('CUDA_VISIBLE_DEVICES');
    } finally {
      services.delete('svc-env');
      apply();
      await waitFor('svc-env gone', async () => (await containersOf('svc-env')).length === 0, 30_000);
      await exec('docker', ['rmi', image]).catch(() => undefined);
    }
  }, 90_000);

  it('gives every container the operator\'s defaults, and GPU containers NGC\'s shm and ulimits', async () => {
    services.set('svc-cpu', testDefinition('cpu'));
    services.set('svc-gpu', testDefinition('gpu', { gpu_count: 1 }));
    apply();
    await waitFor('the CPU service running', () => status('svc-cpu')?.state === 'running', 60_000);
    // The engine here has no NVIDIA runtime: the GPU container is created, then fails to start.
    const [gpu] = await waitFor('the GPU container created', async () => {
      const found = await containersOf('svc-gpu');
      return found.length > 0 ? found : undefined;
    }, 60_000);
    const [cpu] = await containersOf('svc-cpu');
    expect(cpu?.HostConfig).toMatchObject({ CapDrop: ['NET_RAW'], PidsLimit: 32768, ShmSize: 64 * 2 ** 20 });
    expect(cpu?.HostConfig.Ulimits ?? []).toEqual([]);
    expect(gpu?.HostConfig).toMatchObject({
      CapDrop: ['NET_RAW'],
      PidsLimit: 32768,
      ShmSize: 2 ** 30,
      Ulimits: [
        { Name: 'memlock', Soft: -1, Hard: -1 },
        { Name: 'stack', Soft: 67108864, Hard: 67108864 },
      ],
    });
    services.delete('svc-cpu');
    services.delete('svc-gpu');
    apply();
  }, 90_000);

  it('refuses an image from a registry outside pull.allowed_registries, even one already on the host', async () => {
    const image = `quay.io/acme/app-${runId.slice(-6)}:1`;
    await exec('docker', ['tag', TEST_IMAGE_HTTP, image]);
    try {
      services.set('svc-quay', testDefinition('quay', { docker_image: image }));
      apply();
      const reason = await rejectedReason('svc-quay');
      expect(reason).toContain('comes from the registry quay.io, which this host does not pull from (pull.allowed_registries: docker.io,');
      expect(await containersOf('svc-quay')).toEqual([]);
    } finally {
      services.delete('svc-quay');
      apply();
      await exec('docker', ['rmi', image]).catch(() => undefined);
    }
  }, 60_000);

  it('pulls a :latest image again when its replica is created again (the registry sees the request)', async () => {
    const repo = `latest-${runId.slice(-6)}`;
    const image = await reg.push(TEST_IMAGE_HTTP, repo, 'latest');
    // Access-log lines of the engine asking for the manifest (a pull: HEAD or GET), beyond the push's own.
    const manifests = () => reg.requestsFor(`/v2/${repo}/manifests/latest`).filter((l) => /^\S+ - - \[.*"(GET|HEAD) /.test(l)).length;
    const pushed = manifests();
    services.set('svc-latest', testDefinition('latest', { docker_image: image }));
    apply();
    await waitFor('running', () => status('svc-latest')?.state === 'running', 60_000);
    const first = manifests();
    expect(first).toBeGreaterThan(pushed);
    const [before] = await containersOf('svc-latest');
    // An env change recreates the replica: the image is on the host, and still pulled again.
    services.set('svc-latest', testDefinition('latest', { docker_image: image, env_config: [{ env_name: 'REV', env_value: '2' }] }));
    apply();
    await waitFor('the replica recreated and running', async () => {
      const now = await containersOf('svc-latest');
      return status('svc-latest')?.state === 'running' && now.length === 1 && now[0]?.Id !== before?.Id;
    }, 60_000);
    expect(manifests()).toBeGreaterThan(first);
    services.delete('svc-latest');
    apply();
  }, 120_000);
});
