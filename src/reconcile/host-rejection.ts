import { realpath } from 'node:fs/promises';
import type { ServiceDefinition } from '../service-definition/types.js';
import type { GpuDevice } from '../domain/gpu-device.js';
import { placementVerdict } from '../domain/placement.js';
import { registryRefusal } from '../domain/image-source.js';
import { ALWAYS_REFUSED, bindOf, checkHostPath } from '../domain/volume-policy.js';

export interface HostFacts {
  labels: string[];
  gpus: GpuDevice[];
  allowedRoots: string[];
  /** Host paths never mounted: ALWAYS_REFUSED plus the agent's state dir and engine socket (refusedPathsFor). */
  refusedPaths: readonly string[];
  /** pull.allowed_registries; empty = any registry. */
  allowedRegistries: readonly string[];
}

/** The paths refused on this host: the static list, the agent's state dir and the engine's socket, each also as resolved. */
export async function refusedPathsFor(stateDir: string, engineSocket: string | undefined): Promise<string[]> {
  const own = [stateDir, ...(engineSocket === undefined ? [] : [engineSocket])];
  const resolved = await Promise.all(own.map((p) => realpath(p).catch(() => p)));
  return [...new Set([...ALWAYS_REFUSED, ...own, ...resolved])];
}

export type VolumeResolution = { ok: true; binds: string[] } | { ok: false; reason: string };

/**
 * Judges every volume of `definition` and returns the Docker binds with the host paths resolved
 * through symlinks (Docker is handed the real path, never the link). Each path is judged as written
 * before anything touches the file system, then resolved and judged again (volume-policy.ts). The
 * executor calls this again right before create: a directory swapped for a link while the image
 * pulled is caught there.
 */
export async function resolveVolumes(definition: ServiceDefinition, host: Pick<HostFacts, 'allowedRoots' | 'refusedPaths'>): Promise<VolumeResolution> {
  const binds: string[] = [];
  for (const [i, v] of definition.volume_config.entries()) {
    const lexical = checkHostPath(v.host_path, undefined, host.allowedRoots, host.refusedPaths, i);
    if (!lexical.ok) return lexical;
    let resolved: string;
    try {
      resolved = await realpath(v.host_path);
    } catch {
      return { ok: false, reason: `volume_config[${i}].host_path "${v.host_path}" does not exist on this host (create it first; the agent never creates host directories)` };
    }
    const check = checkHostPath(v.host_path, resolved, host.allowedRoots, host.refusedPaths, i);
    if (!check.ok) return check;
    binds.push(bindOf(resolved, v.container_path));
  }
  return { ok: true, binds };
}

/**
 * Why a started container's bind mounts are not what the policy allows, or undefined: every source
 * the engine reports must still be its own real path (no link anywhere on it: a directory swapped
 * for a link between the check and the start is followed by the engine at start) and pass the
 * policy. The executor stops and removes a container this refuses.
 */
export async function mountEscape(bindSources: readonly string[], host: Pick<HostFacts, 'allowedRoots' | 'refusedPaths'>): Promise<string | undefined> {
  for (const [i, source] of bindSources.entries()) {
    const resolved = await realpath(source).catch(() => undefined);
    if (resolved === undefined) return `the bind mount source "${source}" vanished while the container started; it was stopped`;
    if (resolved !== source) {
      return `the bind mount source "${source}" became a link to "${resolved}" while the container started (a directory swapped for a link); it was stopped, and nothing outside the allowed roots stays mounted`;
    }
    const verdict = checkHostPath(source, resolved, host.allowedRoots, host.refusedPaths, i);
    if (!verdict.ok) return `after start: ${verdict.reason}; the container was stopped`;
  }
  return undefined;
}

/**
 * Why `definition` can never run on this host, or undefined when it can: required labels, GPU
 * counts that can never fit, the image's registry (pull.allowed_registries), and every volume
 * (resolveVolumes). Used by the service workers before
 * anything is created, and by `validate --host`.
 */
export async function hostRejection(definition: ServiceDefinition, host: HostFacts): Promise<string | undefined> {
  const verdict = placementVerdict(definition, host.labels, host.gpus);
  if (verdict.kind === 'rejected') return verdict.reason;
  const registry = definition.docker_image === undefined ? undefined : registryRefusal(definition.docker_image, host.allowedRegistries);
  if (registry !== undefined) return registry;
  const volumes = await resolveVolumes(definition, host);
  return volumes.ok ? undefined : volumes.reason;
}
