import path from 'node:path';

import type { VolumeMount } from '../service-definition/types.js';

/** Host paths that are refused whatever the allowlist says. */
export const ALWAYS_REFUSED = ['/', '/etc', '/proc', '/sys', '/dev', '/boot', '/var/run/docker.sock', '/run/docker.sock', '/run/containerd', '/var/lib/docker'];

export type VolumeVerdict = { ok: true } | { ok: false; reason: string };

function isWithin(child: string, parent: string): boolean {
  if (parent === '/') return true;
  return child === parent || child.startsWith(parent.endsWith('/') ? parent : `${parent}/`);
}

/**
 * Checks one host path (already resolved through symlinks by the caller) against the operator's
 * allowlist. Pure. `index` is the position in volume_config, for the message.
 *
 * Refused: relative or non-normalized paths; the Docker/containerd sockets and state; `/`, `/etc`,
 * `/proc`, `/sys`, `/dev`, `/boot` and anything under them, even when allowlisted; anything not
 * under an allowed root. Empty allowlist = no host mounts at all. Checking the resolved path
 * defeats symlinks planted inside an allowed root.
 */
export function checkHostPath(hostPath: string, resolvedPath: string, allowedRoots: string[], index: number): VolumeVerdict {
  const field = `volume_config[${index}].host_path`;
  if (!path.posix.isAbsolute(hostPath) || path.posix.normalize(hostPath) !== hostPath) {
    return { ok: false, reason: `${field} "${hostPath}" must be an absolute, normalized path (no "..", no "//")` };
  }
  for (const refused of ALWAYS_REFUSED) {
    const hit = refused === '/' ? resolvedPath === '/' : isWithin(resolvedPath, refused);
    if (hit) {
      const via = resolvedPath === hostPath ? '' : ` (resolves to "${resolvedPath}")`;
      return { ok: false, reason: `${field} "${hostPath}"${via} is never mountable: ${refused} is refused to protect the host` };
    }
  }
  if (allowedRoots.length === 0) {
    return {
      ok: false,
      reason: `${field} "${hostPath}" refused: this agent allows no host mounts (set volumes.allowed_roots in cyberun-agent.yaml)`,
    };
  }
  if (!allowedRoots.some((root) => isWithin(resolvedPath, root))) {
    const via = resolvedPath === hostPath ? '' : ` (resolves to "${resolvedPath}")`;
    return { ok: false, reason: `${field} "${hostPath}"${via} is outside the allowed roots [${allowedRoots.join(', ')}]` };
  }
  return { ok: true };
}

/** Docker bind strings for checked mounts. */
export function bindsFor(mounts: VolumeMount[]): string[] {
  return mounts.map((m) => `${m.host_path}:${m.container_path}`);
}
