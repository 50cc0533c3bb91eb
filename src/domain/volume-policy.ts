import path from 'node:path';

/**
 * Which host paths a service definition may mount. Pure: the caller resolves symlinks.
 *
 * A host path is judged twice: first as written, before anything touches the file system, so every
 * refused path gets the same answer whether it exists or not (a status reason is no probe of the
 * host's files); then resolved through symlinks, which defeats a link planted inside an allowed
 * root. Docker is then handed the resolved path, and the check is repeated right before create.
 *
 * Refused whatever the allowlist says (ALWAYS_REFUSED, plus what the agent adds at run time: its
 * own state dir, the resolved socket of the engine it drives): the path itself, anything under it,
 * and anything above it (a mount of `/var` holds `/var/lib/docker`). Everything else must be under
 * an allowed root; an empty allowlist means no host mounts at all.
 */
export const ALWAYS_REFUSED: readonly string[] = [
  '/',
  // The host's configuration, kernel interfaces, devices, boot files and system binaries.
  '/etc',
  '/proc',
  '/sys',
  '/dev',
  '/boot',
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/root',
  // Container engines, their sockets and their state: a mount of any of them is root on the host.
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/var/lib/docker',
  '/run/docker',
  '/var/run/docker',
  '/var/lib/containerd',
  '/run/containerd',
  '/var/run/containerd',
  '/var/lib/containers',
  '/run/containers',
  '/run/podman',
  '/run/crio',
  '/var/lib/kubelet',
  '/var/lib/cni',
  '/etc/cni',
  // Rootless Docker/Podman sockets of every user.
  '/run/user/*/docker.sock',
  '/run/user/*/podman',
];

export type VolumeVerdict = { ok: true } | { ok: false; reason: string };

function isWithin(child: string, parent: string): boolean {
  if (parent === '/') return true;
  return child === parent || child.startsWith(parent.endsWith('/') ? parent : `${parent}/`);
}

const components = (p: string): string[] => p.split('/').filter((c) => c !== '');

/**
 * The refused entry `hostPath` hits, if any: the path is the entry, is under it, or holds it
 * (compared component by component; `*` in an entry stands for any one component).
 */
export function refusedBy(hostPath: string, refused: readonly string[]): string | undefined {
  const have = components(hostPath);
  for (const entry of refused) {
    if (entry === '/') {
      if (hostPath === '/') return entry;
      continue;
    }
    const want = components(entry);
    const shared = Math.min(have.length, want.length);
    let same = true;
    for (let i = 0; i < shared && same; i++) same = want[i] === '*' || want[i] === have[i];
    if (same) return entry;
  }
  return undefined;
}

/**
 * Judges one host path against the policy. `resolvedPath` is the path after symlinks (undefined
 * for the first, lexical judgement); `index` is the position in volume_config, for the message.
 */
export function checkHostPath(hostPath: string, resolvedPath: string | undefined, allowedRoots: readonly string[], refused: readonly string[], index: number): VolumeVerdict {
  const field = `volume_config[${index}].host_path`;
  if (!path.posix.isAbsolute(hostPath) || path.posix.normalize(hostPath) !== hostPath) {
    return { ok: false, reason: `${field} "${hostPath}" must be an absolute, normalized path (no "..", no "//")` };
  }
  const judged = resolvedPath ?? hostPath;
  const via = resolvedPath === undefined || resolvedPath === hostPath ? '' : ` (resolves to "${resolvedPath}")`;
  const hit = refusedBy(judged, refused);
  if (hit !== undefined) {
    const how = components(judged).length >= components(hit).length ? `${hit} is refused` : `it holds ${hit}, which is refused`;
    return { ok: false, reason: `${field} "${hostPath}"${via} is never mountable: ${how} to protect the host` };
  }
  if (allowedRoots.length === 0) {
    return { ok: false, reason: `${field} "${hostPath}" refused: this agent allows no host mounts (set volumes.allowed_roots in cyberun-agent.yaml)` };
  }
  if (!allowedRoots.some((root) => isWithin(judged, root))) {
    return { ok: false, reason: `${field} "${hostPath}"${via} is outside the allowed roots [${allowedRoots.join(', ')}]` };
  }
  return { ok: true };
}

/** A Docker bind string: the (resolved) host path, the container path. */
export function bindOf(hostPath: string, containerPath: string): string {
  return `${hostPath}:${containerPath}`;
}
