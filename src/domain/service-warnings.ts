import type { ServiceDefinition } from '../service-definition/types.js';
import { gpuEnvironment } from './gpu-allocator.js';

/**
 * What the agent ignores or changes in a definition, for the service's status (`warnings`): the
 * definition runs, but not exactly as written. Pure; names only, never env values.
 */
export function definitionWarnings(definition: ServiceDefinition): string[] {
  const warnings: string[] = [];
  const { dropped } = gpuEnvironment(definition.env_config);
  if (dropped.length > 0) {
    warnings.push(
      `env_config ${dropped.join(', ')} ${dropped.length === 1 ? 'is' : 'are'} ignored: GPU access comes from gpu_count only, ` +
        'and the agent sets NVIDIA_VISIBLE_DEVICES and NVIDIA_DRIVER_CAPABILITIES itself (remove them from env_config)',
    );
  }
  return warnings;
}
