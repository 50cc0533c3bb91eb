import si from 'systeminformation';
import type { Systeminformation } from 'systeminformation';
import { AgentError, ErrorCodes, errorMessage } from '../errors.js';
import { hardwareLabels } from './labels.js';
import { queryNvidiaSmi } from './nvidia-smi.js';
import type { NvidiaSmiGpu } from './nvidia-smi.js';
import type { HostInventory } from './types.js';
import { UNKNOWN_GPU_MODEL, type GpuDevice } from '../domain/gpu-device.js';
import { sameBusId, type UnopenedGpu } from './gpu-health.js';

export interface ReadInventoryOptions {
  /** `none` skips GPU detection entirely (gpus: [], gpuSource: 'none'). */
  detect: 'auto' | 'none';
  /** Budget for each probe (systeminformation calls, nvidia-smi). */
  timeoutMs: number;
  /** Environment for the agent's own nvidia-smi call. systeminformation always uses process.env. */
  env?: NodeJS.ProcessEnv | undefined;
}

const ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };

function withTimeout<T>(what: string, promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new AgentError(ErrorCodes.INVENTORY_FAILED, `${what} did not answer within ${timeoutMs} ms`, { retryable: true })),
      timeoutMs,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function isNvidia(controller: Systeminformation.GraphicsControllerData): boolean {
  return /nvidia/i.test(controller.vendor) || /nvidia/i.test(controller.name ?? '');
}

/** lspci's "53:00.0" (or "0000:53:00.0") is the tail of nvidia-smi's "00000000:53:00.0". */
function sameBus(smiBusId: string | undefined, lspciAddress: string | undefined): boolean {
  if (!smiBusId || !lspciAddress) return false;
  const tail = lspciAddress.toLowerCase().replace(/^[0-9a-f]{4}:(?=[0-9a-f]{2}:)/, '');
  return smiBusId.toLowerCase().endsWith(`:${tail}`);
}

function toDevice(row: NvidiaSmiGpu, controller: Systeminformation.GraphicsControllerData | undefined): GpuDevice {
  return {
    id: String(row.index),
    index: row.index,
    uuid: row.uuid,
    vendor: 'NVIDIA',
    model: controller?.name ?? row.name ?? UNKNOWN_GPU_MODEL,
    vramTotalMb: controller?.memoryTotal ?? row.memoryTotalMb,
    vramFreeMb: row.memoryFreeMb ?? controller?.memoryFree,
    busId: row.busId,
    driverVersion: row.driverVersion ?? controller?.driverVersion,
    ...(row.fault === undefined ? {} : { unhealthy: row.fault }),
  };
}

/**
 * A GPU nvidia-smi named but could not open: unhealthy. Its device id is the index nvidia-smi
 * printed (the id Docker was given for it), else its bus id (never allocated, so any unique id
 * serves). A row listing the same bus is marked instead of adding a second device.
 */
function withUnopened(gpus: GpuDevice[], unopened: readonly UnopenedGpu[], controllers: readonly Systeminformation.GraphicsControllerData[]): GpuDevice[] {
  const out = [...gpus];
  for (const u of unopened) {
    const why = `nvidia-smi cannot open it: ${u.reason}`;
    const listed = out.findIndex((g) => (u.busId !== undefined && sameBusId(g.busId, u.busId)) || (u.busId === undefined && g.index === u.index));
    const existing = listed >= 0 ? out[listed] : undefined;
    if (existing !== undefined) {
      out[listed] = { ...existing, unhealthy: existing.unhealthy ?? why };
      continue;
    }
    const controller = controllers.find((c) => sameBus(u.busId, c.busAddress));
    out.push({
      id: u.index !== undefined ? String(u.index) : (u.busId ?? 'unknown'),
      index: u.index ?? -1,
      uuid: undefined,
      vendor: 'NVIDIA',
      model: controller?.name ?? UNKNOWN_GPU_MODEL,
      vramTotalMb: controller?.memoryTotal,
      vramFreeMb: undefined,
      busId: u.busId,
      driverVersion: controller?.driverVersion,
      unhealthy: why,
    });
  }
  return out.sort((a, b) => a.index - b.index || a.id.localeCompare(b.id));
}

/**
 * GPUs the agent can hand to Docker, and where their data came from.
 *
 * systeminformation first (it finds controllers through `lspci -vvv` and merges nvidia-smi data by
 * bus address); the device id, index and UUID always come from the agent's own nvidia-smi query,
 * because systeminformation does not report them. Where systeminformation finds no NVIDIA
 * controller (lspci missing or empty: containers, sandboxes) the nvidia-smi rows alone are used.
 * A controller that nvidia-smi does not list (no driver) is not usable and is left out. Each GPU
 * carries nvidia-smi's health verdict (gpu-health.ts); a GPU nvidia-smi names but cannot open is
 * listed as unhealthy rather than left out.
 */
async function readGpus(options: ReadInventoryOptions): Promise<{ gpus: GpuDevice[]; source: HostInventory['gpuSource'] }> {
  if (options.detect === 'none') return { gpus: [], source: 'none' };
  let controllers: Systeminformation.GraphicsControllerData[] = [];
  try {
    const graphics = await withTimeout('systeminformation.graphics()', si.graphics(), options.timeoutMs);
    controllers = graphics.controllers.filter(isNvidia);
  } catch {
    // A hung or failing lspci only costs the enrichment; nvidia-smi below still decides.
    controllers = [];
  }
  const smi = await queryNvidiaSmi({ timeoutMs: options.timeoutMs, env: options.env });
  const rows = smi.kind === 'ok' ? smi.gpus : [];
  const unopened = smi.kind === 'ok' ? smi.unopened : [];
  if (rows.length === 0 && unopened.length === 0) return { gpus: [], source: 'none' };
  const listed = rows.map((row) => toDevice(row, controllers.find((c) => sameBus(row.busId, c.busAddress))));
  const gpus = withUnopened(listed, unopened, controllers);
  const matched = controllers.length > 0 && rows.some((row) => controllers.some((c) => sameBus(row.busId, c.busAddress)));
  return { gpus, source: matched ? 'systeminformation' : 'nvidia-smi' };
}

/**
 * Reads the host: CPU, memory, platform and GPUs, with hardware labels. Never throws for a host
 * without GPUs, lspci or nvidia-smi (gpus: []); throws INVENTORY_FAILED only when CPU, memory or
 * OS data cannot be read within `timeoutMs`.
 */
export async function readInventory(options: ReadInventoryOptions): Promise<HostInventory> {
  let cpu: Systeminformation.CpuData;
  let mem: Systeminformation.MemData;
  let os: Systeminformation.OsData;
  try {
    [cpu, mem, os] = await Promise.all([
      withTimeout('systeminformation.cpu()', si.cpu(), options.timeoutMs),
      withTimeout('systeminformation.mem()', si.mem(), options.timeoutMs),
      withTimeout('systeminformation.osInfo()', si.osInfo(), options.timeoutMs),
    ]);
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw new AgentError(ErrorCodes.INVENTORY_FAILED, `host inventory could not be read: ${errorMessage(err)}`, { cause: err });
  }
  const { gpus, source } = await readGpus(options);
  const arch = os.arch || process.arch;
  return {
    gpus,
    cpu: { model: [cpu.manufacturer, cpu.brand].filter((s) => s).join(' ') || 'unknown', cores: cpu.cores },
    memoryBytes: mem.total,
    platformArch: `${os.platform || process.platform}/${ARCH[arch] ?? arch}`,
    hardwareLabels: hardwareLabels(gpus),
    gpuSource: source,
  };
}
