import { realpath } from 'node:fs/promises';
import type { ServiceDefinition } from '../service-definition/types.js';
import type { GpuDevice } from '../domain/gpu-device.js';
import { placementVerdict } from '../domain/placement.js';
import { checkHostPath } from '../domain/volume-policy.js';

export interface HostFacts {
  labels: string[];
  gpus: GpuDevice[];
  allowedRoots: string[];
}

/**
 * Why `definition` can never run on this host, or undefined when it can: required labels, GPU counts
 * that can never fit, and every volume resolved through symlinks against the allowlist. Used by
 * the service workers before anything is created, and by `validate --host`.
 */
export async function hostRejection(definition: ServiceDefinition, host: HostFacts): Promise<string | undefined> {
  const verdict = placementVerdict(definition, host.labels, host.gpus);
  if (verdict.kind === 'rejected') return verdict.reason;
  for (const [i, v] of definition.volume_config.entries()) {
    let resolved: string;
    try {
      resolved = await realpath(v.host_path);
    } catch {
      return `volume_config[${i}].host_path "${v.host_path}" does not exist on this host (create it first; the agent never creates host directories)`;
    }
    const check = checkHostPath(v.host_path, resolved, host.allowedRoots, i);
    if (!check.ok) return check.reason;
  }
  return undefined;
}
