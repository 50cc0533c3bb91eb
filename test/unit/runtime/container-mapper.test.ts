import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ContainerCreateRequest } from '../../../src/runtime/container-runtime.js';
import type { ObservedContainer } from '../../../src/domain/observed-container.js';
import { fromInspect, fromListEntry, toCreateOptions } from '../../../src/runtime/container-mapper.js';
import type { EngineContainerInspect, EngineContainerListEntry, EngineEndpointSettings } from '../../../src/runtime/engine-types.js';
import { demultiplexLogs, labelFilters } from '../../../src/runtime/docker-runtime.js';
import { PullProgressTracker, splitReference } from '../../../src/runtime/pull-progress.js';
import { defaultSettings, testContainerDefaults } from '../../helpers/container-settings.js';
import { containerSettings } from '../../../src/domain/container-settings.js';

// Captured from Docker Engine 20.10 (API 1.41) by test/fixtures/docker/capture.sh.
function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../../fixtures/docker/${name}.json`, import.meta.url), 'utf8')) as T;
}

const NETWORK = 'cyberun-fixture';
const LABELS = {
  'cloud.cyberun.managed': 'true',
  'cloud.cyberun.agent-id': 'agent-fixture',
  'cloud.cyberun.service-id': 'svc-1',
  'cloud.cyberun.service-slug': 'echo',
  'cloud.cyberun.spec-hash': 'abc123',
  'cloud.cyberun.test-run': 'fixture-capture',
};

describe('fromInspect (captured docker inspect)', () => {
  it.each<[string, Partial<ObservedContainer>]>([
    [
      'inspect-running',
      {
        name: 'fixture-running',
        image: 'cyberun-test/busybox-http:1',
        state: 'running',
        createdAt: Date.parse('2026-11-29T15:25:10.8425556Z'),
        startedAt: '2026-11-29T15:25:11.708665847Z',
        finishedAt: '0001-01-01T00:00:00Z',
        exitCode: undefined,
        oomKilled: false,
        error: undefined,
        ipAddress: '172.23.0.2',
        publishedPort: undefined,
        gpuDeviceIds: [],
      },
    ],
    [
      'inspect-crashed',
      { name: 'fixture-crashed', state: 'exited', exitCode: 3, error: undefined, ipAddress: undefined, publishedPort: undefined, finishedAt: '2026-11-29T15:25:12.468579957Z' },
    ],
    [
      'inspect-gpu-start-failed',
      {
        name: 'fixture-gpu',
        state: 'created',
        // Docker says ExitCode 128 for a start that never happened; the reason is in `error`.
        exitCode: undefined,
        error: 'could not select device driver "nvidia" with capabilities: [[gpu]]',
        ipAddress: undefined,
        gpuDeviceIds: ['0', '2'],
      },
    ],
    ['inspect-published', { name: 'fixture-published', state: 'running', ipAddress: '172.23.0.4', publishedPort: 32771 }],
    ['inspect-cdi', { name: 'fixture-cdi', state: 'created', gpuDeviceIds: ['1'], error: 'could not select device driver "cdi" with capabilities: []' }],
  ])('%s', (name, expected) => {
    const info = fixture<EngineContainerInspect>(name);
    const observed = fromInspect(info, [NETWORK]);
    expect(observed).toMatchObject(expected);
    expect(observed.id).toBe(info.Id);
    expect(observed.labels).toMatchObject(LABELS);
  });

  it('prefers the agent network when attached to several', () => {
    const info = fixture<EngineContainerInspect>('inspect-running');
    const networks = info.NetworkSettings.Networks as Record<string, EngineEndpointSettings>;
    networks['bridge'] = { ...networks[NETWORK]!, IPAddress: '172.17.0.9' };
    const ordered = { bridge: networks['bridge'], [NETWORK]: networks[NETWORK]! };
    info.NetworkSettings.Networks = ordered;
    expect(fromInspect(info, [NETWORK]).ipAddress).toBe('172.23.0.2');
    expect(fromInspect(info, []).ipAddress).toBe('172.17.0.9');
  });
});

describe('fromListEntry (captured GET /containers/json?all=true)', () => {
  const entries = fixture<EngineContainerListEntry[]>('list');
  const byName = (name: string): EngineContainerListEntry => {
    const entry = entries.find((e) => e.Names[0] === `/${name}`);
    if (entry === undefined) throw new Error(`fixture ${name} missing`);
    return entry;
  };

  it.each<[string, Partial<ObservedContainer>]>([
    ['fixture-running', { state: 'running', ipAddress: '172.23.0.2', publishedPort: undefined }],
    ['fixture-published', { state: 'running', ipAddress: '172.23.0.4', publishedPort: 32771 }],
    ['fixture-crashed', { state: 'exited', ipAddress: undefined, exitCode: undefined }],
    // The list still shows a stale address for a container whose start failed: dropped.
    ['fixture-gpu', { state: 'created', ipAddress: undefined }],
    ['fixture-cdi', { state: 'created', ipAddress: undefined }],
  ])('%s', (name, expected) => {
    const entry = byName(name);
    const observed = fromListEntry(entry, [NETWORK]);
    expect(observed).toMatchObject({ ...expected, name, image: 'cyberun-test/busybox-http:1', gpuDeviceIds: [], oomKilled: false, startedAt: undefined });
    expect(observed.createdAt).toBe(entry.Created * 1000);
    expect(observed.labels).toMatchObject(LABELS);
  });

  it('list and inspect agree on what both carry', () => {
    for (const name of ['running', 'published', 'crashed']) {
      const inspected = fromInspect(fixture<EngineContainerInspect>(`inspect-${name}`), [NETWORK]);
      const listed = fromListEntry(byName(`fixture-${name}`), [NETWORK]);
      expect(listed).toMatchObject({
        id: inspected.id,
        name: inspected.name,
        labels: inspected.labels,
        state: inspected.state,
        ipAddress: inspected.ipAddress,
        publishedPort: inspected.publishedPort,
      });
      expect(Math.abs(listed.createdAt - inspected.createdAt)).toBeLessThan(1000);
    }
  });
});

describe('toCreateOptions', () => {
  const base: ContainerCreateRequest = {
    name: 'cyberun-echo-0',
    image: 'ghcr.io/acme/echo:1.2',
    env: ['FOO=bar', 'NVIDIA_VISIBLE_DEVICES=all'],
    labels: { 'cloud.cyberun.managed': 'true' },
    binds: ['/data/models:/models:ro'],
    exposedPort: 8000,
    network: 'cyberun',
    publishPort: false,
    gpu: { kind: 'none' },
    settings: defaultSettings,
  };

  it('applies the security and lifecycle defaults', () => {
    expect(toCreateOptions(base)).toEqual({
      name: 'cyberun-echo-0',
      Image: 'ghcr.io/acme/echo:1.2',
      Env: ['FOO=bar', 'NVIDIA_VISIBLE_DEVICES=void', 'NVIDIA_DRIVER_CAPABILITIES=compute,utility'],
      Labels: { 'cloud.cyberun.managed': 'true' },
      ExposedPorts: { '8000/tcp': {} },
      Tty: false,
      HostConfig: {
        Binds: ['/data/models:/models:ro'],
        NetworkMode: 'cyberun',
        Privileged: false,
        SecurityOpt: ['no-new-privileges'],
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
        RestartPolicy: { Name: 'no' },
        Init: true,
        CapDrop: ['NET_RAW'],
        ShmSize: 64 * 2 ** 20,
        PidsLimit: 32768,
      },
    });
  });

  it('gives GPU containers NGC\'s shm and ulimits, and writes every operator setting', () => {
    const settings = containerSettings({ ...testContainerDefaults, memoryLimitBytes: 2 ** 34, runtime: 'nvidia' }, ['compute', 'video'], true);
    const host = toCreateOptions({ ...base, gpu: { kind: 'devices', ids: ['0'], style: 'device-ids' }, settings }).HostConfig;
    expect(host).toMatchObject({
      CapDrop: ['NET_RAW'],
      PidsLimit: 32768,
      ShmSize: 2 ** 30,
      Memory: 2 ** 34,
      Runtime: 'nvidia',
      Ulimits: [
        { Name: 'memlock', Soft: -1, Hard: -1 },
        { Name: 'stack', Soft: 67108864, Hard: 67108864 },
      ],
    });
  });

  it('leaves the pids limit, memory and runtime to Docker when unset, and sets the driver capabilities itself', () => {
    const settings = containerSettings({ ...testContainerDefaults, pidsLimit: 0 }, ['compute'], false);
    const options = toCreateOptions({ ...base, env: ['NVIDIA_DRIVER_CAPABILITIES=all'], settings });
    expect(options.HostConfig).not.toHaveProperty('PidsLimit');
    expect(options.HostConfig).not.toHaveProperty('Memory');
    expect(options.HostConfig).not.toHaveProperty('Runtime');
    expect(options.HostConfig).not.toHaveProperty('Ulimits');
    expect(options.Env?.filter((e) => e.startsWith('NVIDIA_DRIVER_CAPABILITIES='))).toEqual(['NVIDIA_DRIVER_CAPABILITIES=compute']);
  });

  it.each<[string, ContainerCreateRequest['gpu'], unknown, string]>([
    ['no GPU', { kind: 'none' }, undefined, 'void'],
    ['device ids', { kind: 'devices', ids: ['0', '3'], style: 'device-ids' }, [{ Driver: 'nvidia', DeviceIDs: ['0', '3'], Capabilities: [['gpu']] }], '0,3'],
    ['cdi names', { kind: 'devices', ids: ['1'], style: 'cdi' }, [{ Driver: 'cdi', DeviceIDs: ['nvidia.com/gpu=1'] }], '1'],
  ])('GPU %s', (_label, gpu, requests, visible) => {
    const options = toCreateOptions({ ...base, gpu });
    expect(options.HostConfig?.DeviceRequests).toEqual(requests);
    // env_config can never widen GPU access: the agent's value replaces the service's.
    expect(options.Env?.filter((e) => e.startsWith('NVIDIA_VISIBLE_DEVICES='))).toEqual([`NVIDIA_VISIBLE_DEVICES=${visible}`]);
  });

  it('publishes on an ephemeral host port only when asked', () => {
    expect(toCreateOptions({ ...base, publishPort: true }).HostConfig?.PortBindings).toEqual({ '8000/tcp': [{ HostIp: '', HostPort: '' }] });
    expect(toCreateOptions(base).HostConfig?.PortBindings).toBeUndefined();
  });

  it('does not share arrays with the spec', () => {
    const options = toCreateOptions(base);
    options.HostConfig?.Binds?.push('/x:/x');
    expect(base.binds).toEqual(['/data/models:/models:ro']);
  });
});

describe('engine helpers', () => {
  it.each<[Record<string, string>, string[]]>([
    [{ a: '1' }, ['a=1']],
    [{ a: '1', b: '' }, ['a=1', 'b']],
  ])('labelFilters(%j)', (labels, filters) => {
    expect(labelFilters(labels)).toEqual(filters);
  });

  it.each<[string, { fromImage: string; tag: string }]>([
    ['busybox', { fromImage: 'busybox', tag: 'latest' }],
    ['busybox:1.36', { fromImage: 'busybox', tag: '1.36' }],
    ['127.0.0.1:5000/x/y', { fromImage: '127.0.0.1:5000/x/y', tag: 'latest' }],
    ['127.0.0.1:5000/x/y:2', { fromImage: '127.0.0.1:5000/x/y', tag: '2' }],
    ['ghcr.io/a/b@sha256:abc', { fromImage: 'ghcr.io/a/b', tag: 'sha256:abc' }],
  ])('splitReference(%s)', (ref, expected) => {
    expect(splitReference(ref)).toEqual(expected);
  });

  it('demultiplexes docker log frames, and passes TTY output through', () => {
    const frame = (stream: number, text: string): Buffer => {
      const payload = Buffer.from(text);
      const header = Buffer.alloc(8);
      header[0] = stream;
      header.writeUInt32BE(payload.length, 4);
      return Buffer.concat([header, payload]);
    };
    expect(demultiplexLogs(Buffer.concat([frame(1, 'out 1\n'), frame(2, 'booting…\n'), frame(2, 'fatal\n')]))).toBe('out 1\nbooting…\nfatal\n');
    expect(demultiplexLogs(Buffer.from('plain tty text\n'))).toBe('plain tty text\n');
    expect(demultiplexLogs(Buffer.alloc(0))).toBe('');
  });

  it('aggregates pull progress per layer', () => {
    const tracker = new PullProgressTracker();
    const steps = [
      { status: 'Pulling from x/y', id: '1' },
      { status: 'Pulling fs layer', id: 'a' },
      { status: 'Pulling fs layer', id: 'b' },
      { status: 'Already exists', id: 'c' },
      { status: 'Downloading', id: 'a', progressDetail: { current: 100, total: 1000 } },
      { status: 'Downloading', id: 'b', progressDetail: { current: 50, total: 500 } },
      { status: 'Download complete', id: 'a' },
      { status: 'Extracting', id: 'a', progressDetail: { current: 10, total: 2000 } },
      { status: 'Pull complete', id: 'a' },
    ];
    const changed = steps.map((s) => tracker.apply(s));
    expect(changed).toEqual([false, true, true, true, true, true, true, false, true]);
    expect(tracker.snapshot()).toEqual({ currentBytes: 1050, totalBytes: 1500, layers: 3, layersDone: 2 });
  });
});
