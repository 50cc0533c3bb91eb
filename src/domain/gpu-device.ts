/** One GPU as the agent sees it. `id` is what Docker's DeviceRequests name (nvidia-smi index or UUID). */
export interface GpuDevice {
  /** nvidia-smi index as a string ("0", "1", …): the device id handed to Docker. */
  id: string;
  index: number;
  uuid: string | undefined;
  vendor: string;
  /** Full model name as nvidia-smi prints it, e.g. "NVIDIA H100 80GB HBM3". */
  model: string;
  /** MiB */
  vramTotalMb: number | undefined;
  /** MiB */
  vramFreeMb: number | undefined;
  /** PCI bus id, e.g. "00000000:18:00.0". */
  busId: string | undefined;
  driverVersion: string | undefined;
  /**
   * Why the GPU must not be given to new replicas (nvidia-smi reports it lost, needing a reset,
   * reading errors, or no longer lists it); absent while it is healthy. Set by the host inventory.
   */
  unhealthy?: string | undefined;
}

/** The model of a GPU whose name nvidia-smi could not read. */
export const UNKNOWN_GPU_MODEL = 'unknown';

/** A GPU that may be given to new replicas. */
export function isHealthyGpu(gpu: GpuDevice): boolean {
  return gpu.unhealthy === undefined;
}
