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
