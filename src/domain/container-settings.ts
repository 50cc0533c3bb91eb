/**
 * What every managed container gets from the host's operator, whatever its definition says:
 * dropped capabilities, a pids limit, /dev/shm, optional memory limit and runtime, and for
 * containers with GPUs the settings NVIDIA documents for its NGC containers
 * (`--shm-size=1g --ulimit memlock=-1 --ulimit stack=67108864`). Pure: the executor turns the
 * operator's defaults into the settings of one container, the mapper writes them as HostConfig.
 */

/** The operator's config (containers.*), in bytes; ulimits -1 = unlimited. */
export interface ContainerDefaults {
  /** Capabilities dropped from Docker's default set. */
  capDrop: string[];
  /** Max processes/threads in a container; 0 = unlimited. */
  pidsLimit: number;
  /** /dev/shm size of containers without GPUs. */
  shmSizeBytes: number;
  /** Memory limit; 0 = none. */
  memoryLimitBytes: number;
  /** Docker runtime name (e.g. "nvidia"); undefined = the engine's default. */
  runtime: string | undefined;
  /** Containers with GPUs. */
  gpu: { shmSizeBytes: number; memlockBytes: number; stackBytes: number };
}

export interface Ulimit {
  name: 'memlock' | 'stack';
  soft: number;
  hard: number;
}

/** The settings of one container, as the runtime applies them. */
export interface ContainerSettings {
  capDrop: string[];
  /** undefined = unlimited (Docker's default). */
  pidsLimit: number | undefined;
  shmSizeBytes: number;
  /** undefined = no limit. */
  memoryLimitBytes: number | undefined;
  runtime: string | undefined;
  ulimits: Ulimit[];
  /** NVIDIA_DRIVER_CAPABILITIES, set by the agent so an image's ENV cannot widen it. */
  driverCapabilities: string[];
}

export function containerSettings(defaults: ContainerDefaults, driverCapabilities: readonly string[], hasGpus: boolean): ContainerSettings {
  return {
    capDrop: [...defaults.capDrop],
    pidsLimit: defaults.pidsLimit > 0 ? defaults.pidsLimit : undefined,
    shmSizeBytes: hasGpus ? defaults.gpu.shmSizeBytes : defaults.shmSizeBytes,
    memoryLimitBytes: defaults.memoryLimitBytes > 0 ? defaults.memoryLimitBytes : undefined,
    runtime: defaults.runtime,
    ulimits: hasGpus
      ? [
          { name: 'memlock', soft: defaults.gpu.memlockBytes, hard: defaults.gpu.memlockBytes },
          { name: 'stack', soft: defaults.gpu.stackBytes, hard: defaults.gpu.stackBytes },
        ]
      : [],
    driverCapabilities: [...driverCapabilities],
  };
}
