import type { GpuDevice } from '../domain/gpu-device.js';

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
