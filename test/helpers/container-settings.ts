import type { AgentConfig } from '../../src/config/types.js';
import { containerSettings, type ContainerSettings } from '../../src/domain/container-settings.js';

/** The shipped container defaults (config-schema.ts configDefaults), as AgentConfig holds them. */
export const testContainerDefaults: AgentConfig['containers'] = {
  capDrop: ['NET_RAW'],
  pidsLimit: 32768,
  shmSizeBytes: 64 * 2 ** 20,
  memoryLimitBytes: 0,
  runtime: undefined,
  gpu: { shmSizeBytes: 2 ** 30, memlockBytes: -1, stackBytes: 64 * 2 ** 20 },
};

/** The settings the executor gives a container without GPUs under the shipped defaults. */
export const defaultSettings: ContainerSettings = containerSettings(testContainerDefaults, ['compute', 'utility'], false);
