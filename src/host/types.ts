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
}

export interface HostInventory {
  gpus: GpuDevice[];
  cpu: { model: string; cores: number };
  memoryBytes: number;
  /** e.g. "linux/amd64" */
  platformArch: string;
  /** Labels derived from hardware: "gpu", "gpu-h100", … (config labels are merged elsewhere). */
  hardwareLabels: string[];
  /** Where the GPU data came from, for `inventory` and debugging. */
  gpuSource: 'systeminformation' | 'nvidia-smi' | 'none';
}
