import { isHealthyGpu, type GpuDevice } from './gpu-device.js';
import type { EnvVar } from '../service-definition/types.js';
import { gpuIdsOf, replicaIndexOf, serviceIdOf, serviceSlugOf } from './ownership-labels.js';

/**
 * GPU allocation: which GPUs a replica gets. Pure: no IO, no clock.
 *
 * Exclusive by construction: a replica is only ever given GPUs that no other claim holds. A claim
 * of the same service and replica index is the requester's own (a restart or a re-run of the
 * decision) and is ignored, so allocating twice gives the same answer.
 */

/** GPUs held by one replica (rebuilt at boot from container labels). */
export interface GpuClaim {
  serviceId: string;
  serviceSlug: string;
  replicaIndex: number;
  gpuIds: string[];
}

export interface AllocationRequest {
  serviceId: string;
  serviceSlug: string;
  replicaIndex: number;
  /** -1 = every GPU of the host, 0 = none, N = N exclusive GPUs. */
  gpuCount: number;
  /** Ids this replica held before (restart keeps them). */
  previous?: string[] | undefined;
}

export type AllocationVerdict =
  | { kind: 'allocated'; gpuIds: string[] }
  /** Can fit once the holders release GPUs. */
  | { kind: 'pending'; reason: string; holders: string[] /* slugs */ }
  /** Can never fit this host. */
  | { kind: 'rejected'; reason: string };

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function byIndex(gpus: readonly GpuDevice[]): GpuDevice[] {
  return [...gpus].sort((a, b) => a.index - b.index || a.id.localeCompare(b.id));
}

/** The GPUs a replica holds that are unhealthy now, with why: the reason a replica's status carries. */
export function unhealthyHeld(gpuIds: readonly string[], gpus: readonly GpuDevice[]): { id: string; reason: string }[] {
  return gpuIds.flatMap((id) => {
    const gpu = gpus.find((g) => g.id === id);
    return gpu?.unhealthy === undefined ? [] : [{ id, reason: gpu.unhealthy }];
  });
}

/** "2x NVIDIA H100 80GB HBM3, 1x NVIDIA L40S" */
export function describeGpus(gpus: readonly GpuDevice[]): string {
  const counts = new Map<string, number>();
  for (const gpu of byIndex(gpus)) counts.set(gpu.model, (counts.get(gpu.model) ?? 0) + 1);
  return [...counts].map(([model, n]) => `${n}x ${model}`).join(', ');
}

/**
 * Why `gpuCount` can never fit a host with `gpus`, or undefined when it can (now or later).
 * Shared with placement so both say the same thing.
 */
export function gpuCountNeverFits(gpuCount: number, gpus: readonly GpuDevice[]): string | undefined {
  if (!Number.isInteger(gpuCount) || gpuCount < -1) {
    return `gpu_count ${gpuCount} is invalid: use -1 (every GPU), 0 (none) or a positive number`;
  }
  if (gpuCount === 0) return undefined;
  if (gpus.length === 0) {
    const wanted = gpuCount === -1 ? 'every GPU of the host' : plural(gpuCount, 'GPU');
    return `gpu_count ${gpuCount} asks for ${wanted}, but this host has no GPUs`;
  }
  if (gpuCount > gpus.length) {
    return `gpu_count ${gpuCount} can never fit: this host has ${plural(gpus.length, 'GPU')} (${describeGpus(gpus)})`;
  }
  return undefined;
}

function isOwn(claim: GpuClaim, req: AllocationRequest): boolean {
  return claim.serviceId === req.serviceId && claim.replicaIndex === req.replicaIndex;
}

/**
 * The group of a GPU for "keep a replica's GPUs together": its PCI domain plus the half of the
 * domain's bus range it sits in (buses 00–7f or 80–ff). On two-socket servers the halves usually
 * belong to the two CPU sockets / root complexes, so GPUs of one group talk without crossing the
 * inter-socket link. GPUs without a bus id form one group of their own.
 */
export function pciGroup(gpu: GpuDevice): string {
  const match = /^([0-9a-f]+):([0-9a-f]{2}):/i.exec(gpu.busId ?? '');
  if (!match) return 'unknown';
  const domain = (match[1] ?? '').toLowerCase().replace(/^0+(?=.)/, '');
  const bus = Number.parseInt(match[2] ?? '0', 16);
  return `${domain}:${bus < 0x80 ? 'low' : 'high'}`;
}

/**
 * Deterministic choice of `count` GPUs among `free` (already ordered by index): the first PCI
 * group, in order of its lowest free GPU index, that can hold all of them alone gives its
 * lowest-index free GPUs; when no single group can, the lowest-index free GPUs overall.
 */
function choose(free: readonly GpuDevice[], count: number): GpuDevice[] {
  const groups = new Map<string, GpuDevice[]>();
  for (const gpu of free) {
    const key = pciGroup(gpu);
    const members = groups.get(key) ?? [];
    members.push(gpu);
    groups.set(key, members);
  }
  for (const members of groups.values()) {
    if (members.length >= count) return members.slice(0, count);
  }
  return free.slice(0, count);
}

function holdersOf(gpus: readonly GpuDevice[], others: readonly GpuClaim[]): { slugs: string[]; text: string } {
  const order = new Map(byIndex(gpus).map((gpu, i) => [gpu.id, i]));
  const bySlug = new Map<string, string[]>();
  for (const claim of others) {
    for (const id of claim.gpuIds) {
      if (!order.has(id)) continue;
      const ids = bySlug.get(claim.serviceSlug) ?? [];
      if (!ids.includes(id)) ids.push(id);
      bySlug.set(claim.serviceSlug, ids);
    }
  }
  const entries = [...bySlug].map(([slug, ids]) => {
    const sorted = ids.sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
    return { slug, ids: sorted, first: order.get(sorted[0] ?? '') ?? 0 };
  });
  entries.sort((a, b) => a.first - b.first || a.slug.localeCompare(b.slug));
  return {
    slugs: entries.map((e) => e.slug),
    text: entries.map((e) => `${e.slug} (${e.ids.join(',')})`).join(', '),
  };
}

/** "1 of 4 is unhealthy (1: nvidia-smi cannot open it: Unknown Error)" */
function unhealthyText(sick: readonly GpuDevice[], total: number): string {
  const list = sick.map((gpu) => `${gpu.id}: ${gpu.unhealthy ?? ''}`).join('; ');
  return `${sick.length} of ${total} ${sick.length === 1 ? 'is' : 'are'} unhealthy (${list})`;
}

/**
 * Decides which GPUs a replica gets. Unhealthy GPUs (GpuDevice.unhealthy) are never given: they
 * count for what the host has (so a request they are part of waits instead of being rejected) but
 * not for what is free.
 *
 * - gpuCount 0 → allocated [].
 * - gpuCount N > 0 → N healthy GPUs no other claim holds: `previous` again when all of them still
 *   exist, are healthy and free (a restarted replica keeps its GPUs), otherwise the deterministic
 *   choice of `choose`.
 * - gpuCount -1 → every healthy GPU, only when no other claim holds any of them (and one is).
 * - pending when the GPUs are held or unhealthy (the reason names the holders and the unhealthy
 *   GPUs); rejected when it can never fit.
 */
export function allocateGpus(gpus: GpuDevice[], claims: GpuClaim[], req: AllocationRequest): AllocationVerdict {
  const never = gpuCountNeverFits(req.gpuCount, gpus);
  if (never !== undefined) return { kind: 'rejected', reason: never };
  if (req.gpuCount === 0) return { kind: 'allocated', gpuIds: [] };

  const ordered = byIndex(gpus);
  const healthy = ordered.filter(isHealthyGpu);
  const sick = ordered.filter((gpu) => !isHealthyGpu(gpu));
  const others = claims.filter((claim) => !isOwn(claim, req));
  const held = new Set(others.flatMap((claim) => claim.gpuIds));
  const free = healthy.filter((gpu) => !held.has(gpu.id));
  const heldCount = ordered.filter((gpu) => held.has(gpu.id)).length;
  const wanted = req.gpuCount === -1 ? Math.max(1, healthy.length) : req.gpuCount;
  const allHealthyFree = req.gpuCount === -1 && free.length === healthy.length && healthy.length > 0;

  if (req.gpuCount === -1 ? !allHealthyFree : free.length < wanted) {
    const holders = holdersOf(ordered, others);
    const what = req.gpuCount === -1 ? `all ${plural(ordered.length, 'GPU')}` : plural(wanted, 'GPU');
    const why = [
      ...(sick.length > 0 ? [unhealthyText(sick, ordered.length)] : []),
      ...(heldCount > 0 ? [`${heldCount} of ${ordered.length} are held by ${holders.text}`] : []),
    ];
    return { kind: 'pending', reason: `waiting for ${what}: ${why.join('; ')}`, holders: holders.slugs };
  }
  if (req.gpuCount === -1) return { kind: 'allocated', gpuIds: healthy.map((gpu) => gpu.id) };

  const previous = req.previous ?? [];
  const freeIds = new Set(free.map((gpu) => gpu.id));
  if (previous.length === wanted && new Set(previous).size === wanted && previous.every((id) => freeIds.has(id))) {
    return { kind: 'allocated', gpuIds: free.filter((gpu) => previous.includes(gpu.id)).map((gpu) => gpu.id) };
  }
  return { kind: 'allocated', gpuIds: choose(free, wanted).map((gpu) => gpu.id) };
}

export type RestartVerdict =
  /** Its GPUs are healthy: start the same container again. */
  | { kind: 'keep' }
  /** It holds an unhealthy GPU and enough healthy ones are free: replace it with a new container. */
  | { kind: 'move'; reason: string }
  /** It holds an unhealthy GPU and the healthy ones it needs are not free: wait (pending). */
  | { kind: 'wait'; reason: string };

/**
 * What to do with a stopped replica container that is due to start again (a restart after a crash
 * or a failed start), given the GPUs it holds. A container's GPUs are fixed when it is created, so
 * one holding an unhealthy GPU (or one the inventory no longer has) cannot simply be started: it
 * moves to a new container on healthy GPUs when `allocateGpus` would give them now (its own claim
 * does not count against it), and waits otherwise. Pure.
 */
export function restartVerdict(gpus: GpuDevice[], claims: GpuClaim[], req: AllocationRequest, held: readonly string[]): RestartVerdict {
  const known = new Set(gpus.map((g) => g.id));
  const bad = [
    ...unhealthyHeld(held, gpus).map((u) => `GPU ${u.id} is unhealthy (${u.reason})`),
    ...held.filter((id) => !known.has(id)).map((id) => `GPU ${id} is not in the host inventory`),
  ];
  if (bad.length === 0) return { kind: 'keep' };
  const verdict = allocateGpus(gpus, claims, { ...req, previous: undefined });
  if (verdict.kind === 'allocated') return { kind: 'move', reason: `${bad.join('; ')}: restarting on healthy GPUs` };
  return { kind: 'wait', reason: `${bad.join('; ')}; ${verdict.reason}` };
}

/**
 * Rebuilds the allocation table from running containers, at boot. Containers without a
 * `cloud.cyberun.service-id` label or with an unreadable replica label are not the agent's and are
 * skipped. GPU ids come from `cloud.cyberun.gpus` (comma-separated), else from the container's
 * device requests. Claims of the same service and replica (old and new container during a
 * replace) merge into one.
 */
export function claimsFromContainers(containers: { labels: Record<string, string>; gpuDeviceIds: string[] }[]): GpuClaim[] {
  const claims = new Map<string, GpuClaim>();
  for (const container of containers) {
    const serviceId = serviceIdOf(container);
    const replicaIndex = replicaIndexOf(container);
    if (serviceId === undefined || replicaIndex < 0) continue;
    const gpuIds = gpuIdsOf(container) ?? container.gpuDeviceIds.map((id) => id.trim()).filter((id) => id !== '');
    if (gpuIds.length === 0) continue;
    const key = `${serviceId}\u0000${replicaIndex}`;
    const claim = claims.get(key) ?? {
      serviceId,
      serviceSlug: serviceSlugOf(container) ?? serviceId,
      replicaIndex,
      gpuIds: [],
    };
    for (const id of gpuIds) if (!claim.gpuIds.includes(id)) claim.gpuIds.push(id);
    claims.set(key, claim);
  }
  return [...claims.values()].sort(
    (a, b) => a.serviceId.localeCompare(b.serviceId) || a.replicaIndex - b.replicaIndex,
  );
}

/**
 * Variables that select or steer GPU devices, of any vendor's container runtime or driver: every
 * NVIDIA_* (the NVIDIA Container Toolkit reads NVIDIA_VISIBLE_DEVICES, _DRIVER_CAPABILITIES,
 * _REQUIRE_*, _DISABLE_REQUIRE, _GDS, _MOFED, _NVSWITCH, _GDRCOPY, _IMEX_CHANNELS, _MIG_*, … and
 * adds new ones), and the device-selection variables of CUDA, ROCm/HIP, oneAPI/Level Zero, Gaudi,
 * Neuron and TPUs. Compared case-insensitively.
 */
const GPU_SELECTION_VARS = new Set([
  'CUDA_VISIBLE_DEVICES',
  'CUDA_DEVICE_ORDER',
  'CUDA_MPS_PIPE_DIRECTORY',
  'CUDA_MPS_LOG_DIRECTORY',
  'ROCR_VISIBLE_DEVICES',
  'HIP_VISIBLE_DEVICES',
  'GPU_DEVICE_ORDINAL',
  'AMD_VISIBLE_DEVICES',
  'ZE_AFFINITY_MASK',
  'ONEAPI_DEVICE_SELECTOR',
  'HABANA_VISIBLE_DEVICES',
  'HABANA_VISIBLE_MODULES',
  'NEURON_RT_VISIBLE_CORES',
  'TPU_VISIBLE_CHIPS',
]);

export function isGpuAccessVar(name: string): boolean {
  const n = name.toUpperCase();
  return n.startsWith('NVIDIA_') || GPU_SELECTION_VARS.has(n);
}

/**
 * The container's `KEY=value` environment: `envConfig` in order without the variables that select
 * or steer GPUs (isGpuAccessVar): env_config can never widen GPU access. NVIDIA_VISIBLE_DEVICES and
 * NVIDIA_DRIVER_CAPABILITIES are set by the runtime adapter from the container's GPU request (so an
 * image's own ENV cannot widen it either). `dropped` lists the names removed (never values), for
 * the caller to report.
 */
export function gpuEnvironment(envConfig: EnvVar[]): { env: string[]; dropped: string[] } {
  const env: string[] = [];
  const dropped: string[] = [];
  for (const variable of envConfig) {
    if (isGpuAccessVar(variable.env_name)) {
      if (!dropped.includes(variable.env_name)) dropped.push(variable.env_name);
      continue;
    }
    env.push(`${variable.env_name}=${variable.env_value}`);
  }
  return { env, dropped };
}
