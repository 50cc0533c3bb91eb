import type { ServiceStatusReport } from '../domain/status-types.js';
import type { GpuDevice } from '../domain/gpu-device.js';
import { PROTOCOL_VERSION, type GpuDeviceWire, type HeartbeatFrame, type HelloFrame } from './protocol.js';

/** Pure builders of the frames the agent sends about itself. */

/** What the frames tell about the host (the host inventory satisfies it). */
export interface HostSummary {
  gpus: readonly GpuDevice[];
  /** e.g. "linux/amd64" */
  platformArch: string;
}

const RUNNING_PHASES = new Set(['starting', 'ready', 'unhealthy']);

export function gpuDevicesWire(inventory: HostSummary | undefined): GpuDeviceWire[] {
  return (inventory?.gpus ?? []).map((gpu) => ({
    device_name: gpu.model,
    device_type: gpu.vendor.toLowerCase(),
    vram_total: gpu.vramTotalMb ?? null,
    vram_free: gpu.vramFreeMb ?? null,
    healthy: gpu.unhealthy === undefined,
    ...(gpu.unhealthy === undefined ? {} : { unhealthy_reason: gpu.unhealthy.slice(0, 1024) }),
  }));
}

/** e.g. "linux/amd64" from Node's platform/arch, for hosts without an inventory yet. */
export function nodePlatformArch(platform: string, arch: string): string {
  const goArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' };
  return `${platform}/${goArch[arch] ?? arch}`;
}

export function buildHello(input: {
  agentId: string;
  agentVersion: string;
  labels: string[];
  inventory: HostSummary | undefined;
  fallbackPlatformArch: string;
  snapshot: ServiceStatusReport[];
  /** The version to say; default PROTOCOL_VERSION (a client falls back to an older gateway's). */
  protocolVersion?: number;
}): HelloFrame {
  return {
    type: 'hello',
    agent_id: input.agentId,
    agent_version: input.agentVersion,
    protocol_version: input.protocolVersion ?? PROTOCOL_VERSION,
    labels: [...new Set(input.labels)],
    platform_arch: input.inventory?.platformArch ?? input.fallbackPlatformArch,
    gpu_devices: gpuDevicesWire(input.inventory),
    service_ids: input.snapshot.map((s) => s.serviceId),
  };
}

export function buildHeartbeat(snapshot: ServiceStatusReport[], inventory: HostSummary | undefined): HeartbeatFrame {
  const running = snapshot.reduce((n, s) => n + s.replicas.filter((r) => RUNNING_PHASES.has(r.phase)).length, 0);
  const gpus = inventory?.gpus ?? [];
  const free = gpus.map((g) => g.vramFreeMb);
  const knownFree = free.every((v): v is number => v !== undefined) && gpus.length > 0;
  return {
    type: 'heartbeat',
    running_count: running,
    gpu_capacity: gpus.filter((g) => g.unhealthy === undefined).length,
    gpu_memory_free: knownFree ? free.reduce((a, b) => a + (b ?? 0), 0) : null,
    gpu_devices: gpuDevicesWire(inventory),
  };
}
