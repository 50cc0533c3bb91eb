import type { GpuDevice } from './gpu-device.js';
import type { ServiceDefinition } from '../service-definition/types.js';
import { gpuCountNeverFits } from './gpu-allocator.js';

export type PlacementVerdict = { kind: 'eligible' } | { kind: 'rejected'; reason: string };

/**
 * Whether a service may ever run on this agent. Pure. Checks what can never change while the agent
 * runs: required labels (all must be among `agentLabels`) and, for deployed services, whether
 * `gpu_count` can ever fit the host's GPUs. GPUs held by others are not a placement matter (that is
 * `pending` in the allocator). External services run no container, so labels alone decide.
 */
export function placementVerdict(definition: ServiceDefinition, agentLabels: string[], gpus: GpuDevice[]): PlacementVerdict {
  const have = new Set(agentLabels);
  const missing = definition.required_labels.filter((label) => !have.has(label));
  if (missing.length > 0) {
    const owned = agentLabels.length > 0 ? [...agentLabels].sort().join(', ') : 'none';
    return {
      kind: 'rejected',
      reason: `missing required label${missing.length === 1 ? '' : 's'} ${missing.join(', ')} (this agent has: ${owned})`,
    };
  }
  if (definition.service_type === 'external') return { kind: 'eligible' };
  const never = gpuCountNeverFits(definition.gpu_count, gpus);
  if (never !== undefined) return { kind: 'rejected', reason: never };
  return { kind: 'eligible' };
}
