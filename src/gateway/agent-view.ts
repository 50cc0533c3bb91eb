import type { GpuDeviceWire } from '../tunnel/protocol.js';

/**
 * The agents list as Cyberun's reference shows it (`GET /agents`, docs/gateway.md "agents"). The
 * tunnel keeps its own units (MiB, the vendor's name: docs/protocol.md); this is where they become
 * the API's. Pure.
 */

/** One entry of `system_stats.gpu_devices`. */
export interface GpuDeviceRecord {
  device_name: string;
  /** The compute platform as Cyberun names it: `cuda` for NVIDIA. */
  device_type: string;
  /** Bytes; null when the agent does not know it. */
  vram_total: number | null;
  /** Bytes; null when the agent does not know it. */
  vram_free: number | null;
}

export interface AgentRecord {
  agent_id: string;
  agent_status: string;
  agent_labels: string[];
  /** ISO 8601; null before the first heartbeat. */
  last_heartbeat: string | null;
  agent_version: string;
  gpu_capacity: number;
  running_count: number;
  platform_arch: string;
  connected_at: string;
  system_stats: { gpu_devices: GpuDeviceRecord[] };
}

export const BYTES_PER_MIB = 1024 * 1024;

/**
 * The wire's `device_type` (the vendor in lower case) → Cyberun's. Only `cuda` for NVIDIA is in the
 * public reference; any other value passes through unchanged (the agent detects NVIDIA GPUs only,
 * so none is produced today) rather than a guessed name.
 */
const DEVICE_TYPES: Readonly<Record<string, string>> = { nvidia: 'cuda' };

export function deviceType(wireType: string): string {
  return DEVICE_TYPES[wireType.toLowerCase()] ?? wireType;
}

/** MiB from the tunnel → whole bytes for the API; null stays null. */
export function mibToBytes(mib: number | null): number | null {
  return mib === null ? null : Math.round(mib * BYTES_PER_MIB);
}

export function gpuDeviceRecord(wire: GpuDeviceWire): GpuDeviceRecord {
  return {
    device_name: wire.device_name,
    device_type: deviceType(wire.device_type),
    vram_total: mibToBytes(wire.vram_total),
    vram_free: mibToBytes(wire.vram_free),
  };
}
