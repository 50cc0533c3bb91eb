import { waitFor } from '../helpers/wait-for.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ErrorCodes, isAgentError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { ContainerCreateRequest, PullProgress, RuntimeEvent } from '../../src/runtime/container-runtime.js';
import type { ObservedContainer } from '../../src/domain/observed-container.js';
import { DockerRuntime } from '../../src/runtime/docker-runtime.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import { DOCKER_SOCKET, engineCall, newTestRunId, removeTestNetwork, requireDocker, sweepTestContainers, TEST_RUN_LABEL } from '../helpers/docker.js';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { ensureTestImages } from '../helpers/test-images.js';
import { defaultSettings } from '../helpers/container-settings.js';

const docker = await requireDocker('DockerRuntime integration tests');

const runId = newTestRunId('rt');
const network = `cyberun-test-${runId}`;
const agentId = `agent-${runId}`;
const ours = { [Labels.MANAGED]: 'true', [Labels.AGENT_ID]: agentId, [TEST_RUN_LABEL]: runId };

function newRuntime(addressing: 'ip' | 'published' = 'ip'): DockerRuntime {
  return new DockerRuntime({ socketPath: DOCKER_SOCKET, apiTimeoutMs: 15_000, addressing, logger: silentLogger() });
}

let nameSeq = 0;
function spec(image: string, overrides: Partial<ContainerCreateRequest> = {}): ContainerCreateRequest {
  nameSeq += 1;
  return {
    name: `cyberun-test-${runId}-${nameSeq}`,
    image,
    env: ['FOO=bar'],
    labels: { ...ours, [Labels.REPLICA]: String(nameSeq) },
    binds: [],
    exposedPort: 8080,
    network,
    publishPort: false,
    gpu: { kind: 'none' },
    settings: defaultSettings,
    ...overrides,
  };
}

async function rawInspect(id: string): Promise<Record<string, any>> {
  const answer = await engineCall('GET', `/containers/${id}/json`);
  expect(answer.status).toBe(200);
  return JSON.parse(answer.body) as Record<string, any>;
}


async function httpStatus(host: string, port: number, path: string): Promise<number> {
  const res = await request(`http://${host}:${port}${path}`, { headersTimeout: 2_000, bodyTimeout: 2_000 });
  await res.body.text();
  return res.statusCode;
}

async function catchError(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe.skipIf(!docker)('DockerRuntime against the real engine', () => {
  let runtime: DockerRuntime;
  let image: string;

  beforeAll(async () => {
    image = (await ensureTestImages()).http;
    runtime = newRuntime();
    await runtime.ensureNetwork(network);
  });

  afterAll(async () => {
    await sweepTestContainers(runId);
    await removeTestNetwork(network);
  });

  it('pings the engine', async () => {
    await expect(runtime.ping()).resolves.toBeUndefined();
  });

  it('ensureNetwork is idempotent', async () => {
    await runtime.ensureNetwork(network);
    await Promise.all([runtime.ensureNetwork(network), newRuntime().ensureNetwork(network)]);
    const answer = await engineCall('GET', '/networks');
    const named = (JSON.parse(answer.body) as Array<{ Name: string; Driver: string }>).filter((n) => n.Name === network);
    expect(named).toHaveLength(1);
    expect(named[0]?.Driver).toBe('bridge');
  });

  describe('a running http replica', () => {
    let id: string;
    let observed: ObservedContainer;
    let foreignId: string;

    beforeAll(async () => {
      // Not ours: only the sweep label, no ownership labels.
      foreignId = await runtime.createContainer(spec(image, { labels: { [TEST_RUN_LABEL]: runId }, env: ['MODE=sleep'] }));
      id = await runtime.createContainer(spec(image));
      await runtime.startContainer(id);
      observed = await waitFor('running with an IP', async () => {
        const c = await runtime.inspectContainer(id);
        return c?.state === 'running' && c.ipAddress !== undefined ? c : undefined;
      });
    });

    it('inspect maps state, labels, IP and times', () => {
      expect(observed.id).toBe(id);
      expect(observed.name).toMatch(/^cyberun-test-/);
      expect(observed.image).toBe(image);
      expect(observed.labels).toMatchObject(ours);
      expect(observed.ipAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(observed.exitCode).toBeUndefined();
      expect(observed.gpuDeviceIds).toEqual([]);
      expect(Date.now() - observed.createdAt).toBeLessThan(60_000);
      expect(observed.startedAt).toMatch(/^\d{4}-/);
    });

    it('creates with the security and lifecycle defaults', async () => {
      const raw = await rawInspect(id);
      expect(raw['HostConfig'].SecurityOpt).toEqual(['no-new-privileges']);
      expect(raw['HostConfig'].Privileged).toBe(false);
      expect(raw['HostConfig'].NetworkMode).toBe(network);
      expect(raw['HostConfig'].PidMode).toBe('');
      expect(raw['HostConfig'].LogConfig).toEqual({ Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } });
      expect(raw['HostConfig'].RestartPolicy.Name).toBe('no');
      expect(raw['HostConfig'].Init).toBe(true);
      expect(raw['HostConfig'].DeviceRequests ?? null).toBeNull();
      expect(raw['HostConfig'].PortBindings ?? {}).toEqual({});
      expect(raw['Config'].Env).toEqual(expect.arrayContaining(['FOO=bar', 'NVIDIA_VISIBLE_DEVICES=void']));
      expect(raw['NetworkSettings'].Networks[network].IPAddress).toBe(observed.ipAddress);
    });

    it('the replica endpoint answers HTTP', async () => {
      const endpoint = runtime.replicaEndpoint(observed, 8080);
      expect(endpoint).toEqual({ host: observed.ipAddress, port: 8080 });
      expect(runtime.publishesPorts).toBe(false);
      const status = await waitFor('GET /health', async () => {
        const s = await httpStatus(endpoint!.host, endpoint!.port, '/health');
        return s === 200 ? s : undefined;
      });
      expect(status).toBe(200);
    });

    it('listContainers finds it by labels, with IP, and never lists a container without our labels', async () => {
      const listed = await runtime.listContainers({ [Labels.MANAGED]: 'true', [Labels.AGENT_ID]: agentId });
      const mine = listed.find((c) => c.id === id);
      expect(mine).toBeDefined();
      expect(mine?.state).toBe('running');
      expect(mine?.ipAddress).toBe(observed.ipAddress);
      expect(mine?.labels).toMatchObject(ours);
      expect(listed.some((c) => c.id === foreignId)).toBe(false);
      // '' = key present with any value.
      const byKey = await runtime.listContainers({ [Labels.AGENT_ID]: '', [TEST_RUN_LABEL]: runId });
      expect(byKey.map((c) => c.id)).toContain(id);
      expect(byKey.map((c) => c.id)).not.toContain(foreignId);
      // The foreign container exists all the while, untouched (never started).
      const foreign = await runtime.inspectContainer(foreignId);
      expect(foreign?.state).toBe('created');
    });

    it('creating a second container with the same name is DOCKER_CONFLICT', async () => {
      const err = await catchError(runtime.createContainer({ ...spec(image), name: observed.name }));
      expect(isAgentError(err, ErrorCodes.DOCKER_CONFLICT)).toBe(true);
      expect((err as Error).message).toContain(observed.name);
    });

    it('stop then remove; both tolerate a missing container', async () => {
      await runtime.stopContainer(id, 2_000);
      const stopped = await runtime.inspectContainer(id);
      expect(stopped?.state).toBe('exited');
      expect(stopped?.exitCode).toBeDefined();
      await runtime.stopContainer(id, 2_000); // already stopped: no error
      await runtime.removeContainer(id);
      expect(await runtime.inspectContainer(id)).toBeUndefined();
      await runtime.removeContainer(id);
      await runtime.stopContainer(id, 1_000);
      expect((await runtime.inspectContainer(foreignId))?.state).toBe('created');
    });
  });

  it('renameContainer renames; a taken name is DOCKER_CONFLICT', async () => {
    const a = spec(image, { env: ['MODE=sleep'] });
    const b = spec(image, { env: ['MODE=sleep'] });
    const idA = await runtime.createContainer(a);
    await runtime.createContainer(b);
    await runtime.renameContainer(idA, `${a.name}-renamed`);
    expect((await runtime.inspectContainer(idA))?.name).toBe(`${a.name}-renamed`);
    const err = await catchError(runtime.renameContainer(idA, b.name));
    expect(isAgentError(err, ErrorCodes.DOCKER_CONFLICT)).toBe(true);
  });

  it('watchEvents sees start and die; logsTail and inspect tell why it crashed', async () => {
    const events: RuntimeEvent[] = [];
    const controller = new AbortController();
    runtime.watchEvents(ours, (e) => events.push(e), controller.signal);
    try {
      await new Promise((r) => setTimeout(r, 300)); // let the subscription reach the engine
      const id = await runtime.createContainer(spec(image, { env: ['MODE=crash', 'EXIT_CODE=7'] }));
      await runtime.startContainer(id);
      await waitFor('die event', async () => (events.some((e) => e.containerId === id && e.action === 'die') ? true : undefined));
      const actions = events.filter((e) => e.containerId === id).map((e) => e.action);
      expect(actions).toEqual(expect.arrayContaining(['create', 'start', 'die']));
      const die = events.find((e) => e.containerId === id && e.action === 'die');
      expect(die?.labels).toMatchObject(ours);
      expect(Math.abs((die?.time ?? 0) - Date.now())).toBeLessThan(30_000);

      const crashed = await waitFor('exited', async () => {
        const c = await runtime.inspectContainer(id);
        return c?.state === 'exited' ? c : undefined;
      });
      expect(crashed.exitCode).toBe(7);
      const logs = await runtime.logsTail(id, 50);
      expect(logs).toContain('booting…');
      expect(logs).toContain('fatal: config missing');
      expect(logs).not.toMatch(/[\u0000-\u0008]/); // demultiplexed: no frame headers left
      const lastLine = await runtime.logsTail(id, 1);
      expect(lastLine.trim()).toBe('fatal: config missing');
    } finally {
      controller.abort();
    }
  });

  it('GPU device-ids: create records the exact ids; start fails with the engine reason', async () => {
    const id = await runtime.createContainer(spec(image, { gpu: { kind: 'devices', ids: ['0', '2'], style: 'device-ids' } }));
    const raw = await rawInspect(id);
    expect(raw['HostConfig'].DeviceRequests).toEqual([
      expect.objectContaining({ Driver: 'nvidia', DeviceIDs: ['0', '2'], Capabilities: [['gpu']] }),
    ]);
    expect(raw['Config'].Env).toContain('NVIDIA_VISIBLE_DEVICES=0,2');
    expect((await runtime.inspectContainer(id))?.gpuDeviceIds).toEqual(['0', '2']);
    const err = await catchError(runtime.startContainer(id));
    expect(isAgentError(err, ErrorCodes.CONTAINER_START_FAILED)).toBe(true);
    expect((err as Error).message).toContain('could not select device driver "nvidia"');
  });

  it('GPU cdi style: device names nvidia.com/gpu=<id>, read back as plain ids', async () => {
    const id = await runtime.createContainer(spec(image, { gpu: { kind: 'devices', ids: ['1'], style: 'cdi' } }));
    const raw = await rawInspect(id);
    expect(raw['HostConfig'].DeviceRequests).toEqual([expect.objectContaining({ Driver: 'cdi', DeviceIDs: ['nvidia.com/gpu=1'] })]);
    expect((await runtime.inspectContainer(id))?.gpuDeviceIds).toEqual(['1']);
  });

  it('published addressing: an ephemeral host port reachable at 127.0.0.1', async () => {
    const published = newRuntime('published');
    expect(published.publishesPorts).toBe(true);
    const id = await published.createContainer(spec(image, { publishPort: true }));
    await published.startContainer(id);
    const observed = await waitFor('published port', async () => {
      const c = await published.inspectContainer(id);
      return c?.publishedPort !== undefined ? c : undefined;
    });
    const endpoint = published.replicaEndpoint(observed, 8080);
    expect(endpoint).toEqual({ host: '127.0.0.1', port: observed.publishedPort });
    await waitFor('GET /health via the published port', async () =>
      (await httpStatus(endpoint!.host, endpoint!.port, '/health')) === 200 ? true : undefined,
    );
    const listed = await published.listContainers({ [TEST_RUN_LABEL]: runId, [Labels.REPLICA]: observed.labels[Labels.REPLICA] ?? '' });
    expect(listed.find((c) => c.id === id)?.publishedPort).toBe(observed.publishedPort);
    await published.removeContainer(id);
  });

  describe('images', () => {
    let registry: FakeRegistry;
    const pulled: string[] = [];

    beforeAll(async () => {
      registry = await startFakeRegistry();
    });

    afterAll(async () => {
      await registry.close();
      for (const ref of pulled) await engineCall('DELETE', `/images/${ref}?force=true`);
    });

    it('hasImage is true for a local image and false for a missing one', async () => {
      expect(await runtime.hasImage(image)).toBe(true);
      expect(await runtime.hasImage(`cyberun-test/missing-${runId}:1`)).toBe(false);
    });

    it('a pull from an unreachable registry fails fast with IMAGE_PULL_FAILED naming the image', async () => {
      const started = Date.now();
      const err = await catchError(runtime.pullImage('127.0.0.1:1/nope:1', { stallTimeoutMs: 20_000, totalTimeoutMs: 30_000 }));
      expect(isAgentError(err, ErrorCodes.IMAGE_PULL_FAILED)).toBe(true);
      expect((err as Error).message).toContain('127.0.0.1:1/nope:1');
      expect(Date.now() - started).toBeLessThan(15_000);
    });

    it('a registry error is IMAGE_PULL_FAILED naming the image and the registry message', async () => {
      const repository = `cyberun-test/missing-${runId}`;
      registry.setBehaviour(repository, 'missing');
      const ref = `${registry.host}/${repository}:1`;
      const err = await catchError(runtime.pullImage(ref, { stallTimeoutMs: 10_000, totalTimeoutMs: 30_000 }));
      expect(isAgentError(err, ErrorCodes.IMAGE_PULL_FAILED)).toBe(true);
      expect((err as Error).message).toContain(`"${ref}"`);
      expect((err as Error).message).toContain('manifest unknown');
    });

    it('a layer download that stalls ends in IMAGE_PULL_STALLED; a retry starts a fresh download', async () => {
      const repository = `cyberun-test/stall-${runId}`;
      registry.setBehaviour(repository, 'stall-layer');
      const ref = `${registry.host}/${repository}:1`;
      pulled.push(ref);
      const progress: PullProgress[] = [];
      const started = Date.now();
      const err = await catchError(runtime.pullImage(ref, { stallTimeoutMs: 1_500, totalTimeoutMs: 60_000, onProgress: (p) => progress.push(p) }));
      expect(isAgentError(err, ErrorCodes.IMAGE_PULL_STALLED)).toBe(true);
      expect((err as { retryable: boolean }).retryable).toBe(true);
      expect((err as Error).message).toContain(ref);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(progress.at(-1)?.currentBytes).toBeLessThan(registry.layerSize(repository));
      expect(registry.requests.some((r) => r.path.startsWith(`/v2/${repository}/blobs/`))).toBe(true);
      // dockerd 20.10 cancels the pull when we hang up ("Not continuing with pull after error:
      // context canceled") but leaves its blocked blob read open; what matters is that a retry is
      // not stuck behind it. The blocked read is cut afterwards so it frees its download slot.
      registry.setBehaviour(repository, 'serve');
      await runtime.pullImage(ref, { stallTimeoutMs: 10_000, totalTimeoutMs: 60_000 });
      expect(await runtime.hasImage(ref)).toBe(true);
      registry.releaseStalls();
    });

    it('a total timeout shorter than the pull ends in IMAGE_PULL_TIMEOUT', async () => {
      const repository = `cyberun-test/slow-${runId}`;
      registry.setBehaviour(repository, 'stall-layer');
      const ref = `${registry.host}/${repository}:1`;
      pulled.push(ref);
      const err = await catchError(runtime.pullImage(ref, { stallTimeoutMs: 30_000, totalTimeoutMs: 1_500 }));
      expect(isAgentError(err, ErrorCodes.IMAGE_PULL_TIMEOUT)).toBe(true);
      registry.releaseStalls();
    });

    it('pulls a complete image with progress; concurrent pulls of one ref share one registry fetch', async () => {
      const repository = `cyberun-test/tiny-${runId}`;
      const ref = `${registry.host}/${repository}:1`;
      pulled.push(ref);
      const first: PullProgress[] = [];
      const second: PullProgress[] = [];
      await Promise.all([
        runtime.pullImage(ref, { stallTimeoutMs: 10_000, totalTimeoutMs: 60_000, onProgress: (p) => first.push(p) }),
        runtime.pullImage(ref, { stallTimeoutMs: 10_000, totalTimeoutMs: 60_000, onProgress: (p) => second.push(p) }),
      ]);
      expect(await runtime.hasImage(ref)).toBe(true);
      for (const events of [first, second]) {
        expect(events.length).toBeGreaterThan(1);
        const last = events.at(-1)!;
        expect(last.totalBytes).toBe(registry.layerSize(repository));
        expect(last.currentBytes).toBe(last.totalBytes);
        expect(last).toMatchObject({ layers: 1, layersDone: 1 });
        expect(events.some((p) => p.currentBytes > 0 && p.currentBytes < p.totalBytes)).toBe(true);
      }
      // One pull sequence asks for the tag's manifest once (HEAD or GET), then fetches by digest.
      const manifestFetches = registry.requests.filter((r) => r.path === `/v2/${repository}/manifests/1`);
      const layerFetches = registry.requests.filter((r) => r.path.startsWith(`/v2/${repository}/blobs/`) && r.method === 'GET');
      expect(manifestFetches).toHaveLength(1);
      expect(layerFetches).toHaveLength(2); // config + layer, once each
    });
  });
});
