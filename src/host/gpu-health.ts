import type { GpuDevice } from '../domain/gpu-device.js';

/**
 * GPU health as nvidia-smi shows it. Pure: reads what nvidia-smi printed, decides nothing else.
 *
 * A GPU is unhealthy when nvidia-smi
 * - prints an error where a value belongs: `ERR!` (its table form) or an NVML error text in
 *   brackets (`[GPU is lost]`, `[GPU requires reset]`, `[Unknown Error]`, …) in any queried field;
 * - prints `[N/A]` for a field every working GPU has (REQUIRED_FIELDS);
 * - cannot open it at all (`Unable to determine the device handle for GPU…: <reason>`);
 * - no longer lists a GPU it listed before (`withMissingGpus`; the agent remembers the last list).
 *
 * `[N/A]`, `[Not Supported]` and `[Insufficient Permissions]` elsewhere are not faults: boards
 * legitimately lack fan, power or utilization readings (MIG, passively cooled cards).
 */

/** Fields a working GPU always reports; `[N/A]` there means nvidia-smi cannot read the device. */
export const REQUIRED_FIELDS: readonly string[] = ['name', 'pci.bus_id'];

/** Bracketed values that say "no such reading", not "the GPU failed". */
const NOT_A_FAULT = new Set(['[N/A]', '[Not Supported]', '[Insufficient Permissions]']);

/** The error text in a value nvidia-smi printed instead of a reading, or undefined for a reading. */
export function faultIn(value: string): string | undefined {
  const v = value.trim();
  if (v === 'ERR!') return 'ERR!';
  if (v.startsWith('[') && v.endsWith(']') && !NOT_A_FAULT.has(v)) return v.slice(1, -1);
  return undefined;
}

/**
 * Why one `--query-gpu` row shows a broken GPU, or undefined when it looks healthy.
 * `row` maps field names (as queried) to the values printed. The reason names the error and the
 * fields it was printed for, e.g. `nvidia-smi prints "GPU requires reset" for temperature.gpu, pstate`.
 */
export function rowFault(row: Readonly<Record<string, string>>): string | undefined {
  const byError = new Map<string, string[]>();
  for (const [field, value] of Object.entries(row)) {
    const fault = faultIn(value);
    if (fault === undefined) continue;
    byError.set(fault, [...(byError.get(fault) ?? []), field]);
  }
  if (byError.size > 0) {
    return [...byError].map(([error, fields]) => `nvidia-smi prints "${error}" for ${fields.join(', ')}`).join('; ');
  }
  const missing = REQUIRED_FIELDS.filter((f) => f in row && NOT_A_FAULT.has((row[f] ?? '').trim()));
  if (missing.length > 0) return `nvidia-smi reports no ${missing.join(', ')}`;
  return undefined;
}

/** A GPU nvidia-smi named but could not open. */
export interface UnopenedGpu {
  /** The index, when nvidia-smi printed one (newer drivers: "GPU1: 0000:34:00.0"). */
  index: number | undefined;
  /** PCI bus id as printed ("0000:34:00.0"), when printed. */
  busId: string | undefined;
  /** nvidia-smi's words, e.g. "GPU is lost. Reboot the system to recover this GPU". */
  reason: string;
}

// "Unable to determine the device handle for GPU 0000:02:00.0: GPU is lost. Reboot the system …"
// "Unable to determine the device handle for GPU0000:07:00.0: Unknown Error"
// "Unable to determine the device handle for GPU1: 0000:34:00.0: Unknown Error"
const HANDLE_ERROR = /^Unable to determine the device handle for GPU\s*(?:(\d+):\s+)?([0-9A-Fa-f]{1,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])?\s*:?\s*(.*)$/;

/** The GPU a line of nvidia-smi output says it could not open, or undefined for any other line. */
export function parseUnopenedGpu(line: string): UnopenedGpu | undefined {
  const m = HANDLE_ERROR.exec(line.trim());
  if (!m) return undefined;
  const reason = (m[3] ?? '').replace(/\s+/g, ' ').trim();
  return { index: m[1] === undefined ? undefined : Number(m[1]), busId: m[2], reason: reason === '' ? 'unknown error' : reason };
}

/** "0000:34:00.0" and "00000000:34:00.0" name the same device: compare domain as a number. */
export function sameBusId(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const split = (id: string) => {
    const m = /^([0-9a-f]+):([0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f])$/i.exec(id.trim());
    return m ? { domain: Number.parseInt(m[1] ?? '0', 16), rest: (m[2] ?? '').toLowerCase() } : undefined;
  };
  const x = split(a);
  const y = split(b);
  return x !== undefined && y !== undefined && x.domain === y.domain && x.rest === y.rest;
}

/** The same physical GPU: same UUID when both are known, else same bus id, else same device id. */
export function sameGpu(a: GpuDevice, b: GpuDevice): boolean {
  if (a.uuid !== undefined && b.uuid !== undefined) return a.uuid === b.uuid;
  if (a.busId !== undefined && b.busId !== undefined) return sameBusId(a.busId, b.busId);
  return a.id === b.id;
}

/**
 * The current GPUs plus every GPU of `previous` that nvidia-smi no longer lists, kept (with its
 * last known data) as unhealthy. A GPU that fell off the bus must not silently shrink the host:
 * replicas holding it need a reason, and a GPU that comes back is the same device again. A GPU
 * already missing keeps its first reason. One whose device id another listed GPU now has (the
 * driver renumbered after a reload) is dropped: ids stay unique. Sorted by index.
 */
export function withMissingGpus(previous: readonly GpuDevice[], current: readonly GpuDevice[]): GpuDevice[] {
  const missing = previous
    .filter((old) => !current.some((now) => sameGpu(old, now) || now.id === old.id))
    .map((old): GpuDevice => ({
      ...old,
      unhealthy: old.unhealthy?.startsWith(MISSING) ? old.unhealthy : `${MISSING} (last seen at ${old.busId ?? `index ${old.index}`})`,
    }));
  return [...current, ...missing].sort((a, b) => a.index - b.index || a.id.localeCompare(b.id));
}

const MISSING = 'no longer listed by nvidia-smi';

/** What one inventory refresh changes (the agent acts on it: new hello, recheck, logs). */
export interface GpuInventoryUpdate {
  /** The fresh GPUs plus those nvidia-smi stopped listing (withMissingGpus). */
  gpus: GpuDevice[];
  /** GPU ids, their health or the hardware labels changed: what the gateway places by. */
  placementChanged: boolean;
  /** Any GPU's health or reason changed: services are judged again. */
  healthChanged: boolean;
  /** GPUs unhealthy now that were not (or with another reason) before. */
  turnedUnhealthy: GpuDevice[];
  /** GPUs healthy now that were unhealthy before. */
  recovered: GpuDevice[];
}

/** Compares an inventory refresh with the last one. Pure. */
export function gpuInventoryUpdate(
  before: { gpus: readonly GpuDevice[]; hardwareLabels: readonly string[] },
  fresh: { gpus: readonly GpuDevice[]; hardwareLabels: readonly string[] },
): GpuInventoryUpdate {
  const gpus = withMissingGpus(before.gpus, fresh.gpus);
  const health = (list: readonly GpuDevice[]) => JSON.stringify(list.map((g) => [g.id, g.unhealthy ?? null]));
  const placement = (list: readonly GpuDevice[], labels: readonly string[]) => JSON.stringify([list.map((g) => [g.id, g.unhealthy === undefined]), labels]);
  const was = (g: GpuDevice) => before.gpus.find((b) => b.id === g.id);
  return {
    gpus,
    placementChanged: placement(gpus, fresh.hardwareLabels) !== placement(before.gpus, before.hardwareLabels),
    healthChanged: health(gpus) !== health(before.gpus),
    turnedUnhealthy: gpus.filter((g) => g.unhealthy !== undefined && was(g)?.unhealthy !== g.unhealthy),
    recovered: gpus.filter((g) => g.unhealthy === undefined && was(g)?.unhealthy !== undefined),
  };
}
