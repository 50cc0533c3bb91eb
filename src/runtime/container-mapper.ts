import type { ContainerCreateRequest, GpuRequest } from './container-runtime.js';
import type { ContainerState, ObservedContainer } from '../domain/observed-container.js';
import type { ContainerSettings } from '../domain/container-settings.js';
import type {
  EngineContainerCreateOptions,
  EngineContainerInspect,
  EngineContainerListEntry,
  EngineDeviceRequest,
  EngineEndpointSettings,
  EngineHostConfig,
} from './engine-types.js';

/**
 * Pure translation between the agent's container model and Docker Engine API JSON. No IO.
 *
 * - `toCreateOptions`: ContainerCreateRequest → POST /containers/create body, with the security
 *   defaults every managed container gets (see the function).
 * - `fromInspect` / `fromListEntry`: GET /containers/{id}/json and GET /containers/json entries →
 *   ObservedContainer. A list entry carries no start/finish times, exit code, OOM flag or device
 *   requests: those fields are undefined/false/[] there, and `inspect` fills them.
 */

/** CDI device names the 'cdi' style produces: `nvidia.com/gpu=<id>`. */
export const CDI_GPU_PREFIX = 'nvidia.com/gpu=';

/**
 * Env key read by the NVIDIA container runtime. The mapper always sets it from the GPU request
 * (`void` when no GPU) and drops any value from the service's env, so env_config can never widen
 * GPU access on hosts whose default runtime is nvidia.
 */
export const NVIDIA_VISIBLE_DEVICES = 'NVIDIA_VISIBLE_DEVICES';
/** Set from `gpu.driver_capabilities` on every container, so an image's `ENV …=all` cannot widen it. */
export const NVIDIA_DRIVER_CAPABILITIES = 'NVIDIA_DRIVER_CAPABILITIES';

const KNOWN_STATES: ReadonlySet<string> = new Set<ContainerState>([
  'created',
  'running',
  'paused',
  'restarting',
  'removing',
  'exited',
  'dead',
]);

export function portKey(port: number): string {
  return `${port}/tcp`;
}

function deviceRequests(gpu: GpuRequest): EngineDeviceRequest[] | undefined {
  if (gpu.kind === 'none') return undefined;
  if (gpu.style === 'cdi') return [{ Driver: 'cdi', DeviceIDs: gpu.ids.map((id) => CDI_GPU_PREFIX + id) }];
  return [{ Driver: 'nvidia', DeviceIDs: [...gpu.ids], Capabilities: [['gpu']] }];
}

function envWithGpuVisibility(env: readonly string[], gpu: GpuRequest, driverCapabilities: readonly string[]): string[] {
  const own = new Set([NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES]);
  const kept = env.filter((entry) => !own.has(entry.split('=', 1)[0] ?? ''));
  const visible = gpu.kind === 'none' || gpu.ids.length === 0 ? 'void' : gpu.ids.join(',');
  return [...kept, `${NVIDIA_VISIBLE_DEVICES}=${visible}`, `${NVIDIA_DRIVER_CAPABILITIES}=${driverCapabilities.join(',')}`];
}

/** The operator's container settings as HostConfig fields (unset ones left to Docker). */
function settingsHostConfig(settings: ContainerSettings): EngineHostConfig {
  return {
    CapDrop: [...settings.capDrop],
    ShmSize: settings.shmSizeBytes,
    ...(settings.pidsLimit === undefined ? {} : { PidsLimit: settings.pidsLimit }),
    ...(settings.memoryLimitBytes === undefined ? {} : { Memory: settings.memoryLimitBytes }),
    ...(settings.runtime === undefined ? {} : { Runtime: settings.runtime }),
    ...(settings.ulimits.length === 0 ? {} : { Ulimits: settings.ulimits.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })) }),
  };
}

/**
 * Create options for a managed container: attached to `spec.network`, never privileged, no host
 * network/PID, `no-new-privileges`, bounded json-file logs, Docker restart policy `no` (restarts
 * are the agent's job), an init process reaping zombies, GPUs only through explicit device ids,
 * an ephemeral host port only when `spec.publishPort`, and the operator's settings
 * (capabilities dropped, pids, shm, ulimits, memory, runtime: domain/container-settings.ts).
 */
export function toCreateOptions(spec: ContainerCreateRequest): EngineContainerCreateOptions {
  const port = portKey(spec.exposedPort);
  const requests = deviceRequests(spec.gpu);
  const hostConfig: EngineHostConfig = {
    Binds: [...spec.binds],
    NetworkMode: spec.network,
    Privileged: false,
    SecurityOpt: ['no-new-privileges'],
    LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    RestartPolicy: { Name: 'no' },
    Init: true,
    ...settingsHostConfig(spec.settings),
    ...(spec.publishPort ? { PortBindings: { [port]: [{ HostIp: '', HostPort: '' }] } } : {}),
    ...(requests === undefined ? {} : { DeviceRequests: requests }),
  };
  return {
    name: spec.name,
    Image: spec.image,
    Env: envWithGpuVisibility(spec.env, spec.gpu, spec.settings.driverCapabilities),
    Labels: { ...spec.labels },
    ExposedPorts: { [port]: {} },
    Tty: false,
    HostConfig: hostConfig,
  };
}

/**
 * States in which a container holds its network endpoint and port bindings. The list endpoint
 * still shows an address for a container whose start failed (Docker 20.10, captured in
 * test/fixtures/docker/list.json), so addresses of containers in other states are dropped.
 */
const ATTACHED_STATES: ReadonlySet<ContainerState> = new Set<ContainerState>(['running', 'paused', 'restarting']);

function toState(value: string | undefined): ContainerState {
  return value !== undefined && KNOWN_STATES.has(value) ? (value as ContainerState) : 'dead';
}

function gpuIdsOf(requests: readonly EngineDeviceRequest[] | null | undefined): string[] {
  const ids: string[] = [];
  for (const request of requests ?? []) {
    for (const id of request.DeviceIDs ?? []) {
      ids.push(id.startsWith(CDI_GPU_PREFIX) ? id.slice(CDI_GPU_PREFIX.length) : id);
    }
  }
  return ids;
}

/**
 * The container's IP on the first of `preferredNetworks` it is attached to; else on any network
 * that gave it an address (e.g. a container created by hand on another network).
 */
function pickIp(networks: Record<string, EngineEndpointSettings> | null | undefined, preferredNetworks: readonly string[]): string | undefined {
  if (networks === null || networks === undefined) return undefined;
  for (const name of preferredNetworks) {
    const ip = networks[name]?.IPAddress;
    if (ip !== undefined && ip !== '') return ip;
  }
  for (const settings of Object.values(networks)) {
    if (settings.IPAddress !== undefined && settings.IPAddress !== '') return settings.IPAddress;
  }
  return undefined;
}

function stripSlash(name: string | undefined): string {
  return name === undefined ? '' : name.replace(/^\//, '');
}

function nonEmpty(value: string | undefined | null): string | undefined {
  return value === undefined || value === null || value === '' ? undefined : value;
}

/** The host port bound to the first port the container asked to publish. */
function publishedFromInspect(info: EngineContainerInspect): number | undefined {
  const ports = info.NetworkSettings.Ports ?? {};
  const requested = Object.keys(info.HostConfig?.PortBindings ?? {});
  const keys = requested.length > 0 ? requested : Object.keys(ports);
  for (const key of keys) {
    for (const binding of ports[key] ?? []) {
      const port = Number(binding.HostPort);
      if (Number.isInteger(port) && port > 0) return port;
    }
  }
  return undefined;
}

/** Maps GET /containers/{id}/json. */
export function fromInspect(info: EngineContainerInspect, preferredNetworks: readonly string[] = []): ObservedContainer {
  const state = info.State;
  const started = nonEmpty(state?.StartedAt);
  const finished = nonEmpty(state?.FinishedAt);
  const status = toState(state?.Status);
  const attached = ATTACHED_STATES.has(status);
  return {
    id: info.Id,
    name: stripSlash(info.Name),
    image: nonEmpty(info.Config?.Image) ?? info.Image,
    labels: { ...(info.Config?.Labels ?? {}) },
    state: status,
    createdAt: Date.parse(info.Created),
    startedAt: started,
    finishedAt: finished,
    // Docker reports ExitCode 0 for a container that never ran; only a finished one has a real code.
    exitCode: finished !== undefined && !finished.startsWith('0001-') ? state?.ExitCode : undefined,
    oomKilled: state?.OOMKilled === true,
    error: nonEmpty(state?.Error),
    ipAddress: attached ? pickIp(info.NetworkSettings.Networks, preferredNetworks) : undefined,
    publishedPort: attached ? publishedFromInspect(info) : undefined,
    gpuDeviceIds: gpuIdsOf(info.HostConfig?.DeviceRequests),
    bindSources: (info.Mounts ?? []).filter((m) => m.Type === 'bind' && m.Source !== undefined).map((m) => m.Source ?? ''),
  };
}

/** Maps one entry of GET /containers/json (all=true). */
export function fromListEntry(entry: EngineContainerListEntry, preferredNetworks: readonly string[] = []): ObservedContainer {
  const published = (entry.Ports ?? []).find((p) => p.Type === 'tcp' && typeof p.PublicPort === 'number' && p.PublicPort > 0);
  const state = toState(entry.State);
  const attached = ATTACHED_STATES.has(state);
  return {
    id: entry.Id,
    name: stripSlash(entry.Names?.[0]),
    image: entry.Image,
    labels: { ...(entry.Labels ?? {}) },
    state,
    createdAt: entry.Created * 1000,
    startedAt: undefined,
    finishedAt: undefined,
    exitCode: undefined,
    oomKilled: false,
    error: undefined,
    ipAddress: attached ? pickIp(entry.NetworkSettings?.Networks, preferredNetworks) : undefined,
    publishedPort: attached ? published?.PublicPort : undefined,
    gpuDeviceIds: [],
  };
}
