/**
 * Where an image comes from and when it is fetched again: the registry host of a reference, the
 * operator's allowlist of registries, and the pull policy. Pure.
 */

export const DOCKER_HUB = 'docker.io';

const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/**
 * The registry host of an image reference: the first path component when it looks like a host
 * (contains '.' or ':', or is 'localhost'), else Docker Hub. Docker Hub aliases map to 'docker.io'.
 */
export function registryHost(ref: string): string {
  const slash = ref.indexOf('/');
  if (slash < 0) return DOCKER_HUB;
  const first = ref.slice(0, slash);
  if (!first.includes('.') && !first.includes(':') && first !== 'localhost') return DOCKER_HUB;
  const host = first.toLowerCase();
  return DOCKER_HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}

/** A config key ("https://index.docker.io/v1/", "ghcr.io", "http://h:5000/v2") → registry host. */
export function normalizeRegistryKey(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, '').split('/')[0]?.toLowerCase() ?? '';
  return DOCKER_HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}
/**
 * When an image is pulled before a container is created:
 * - 'auto' (the kubelet's default): a reference without a tag or with `:latest` on every create,
 *   any other tag or a digest only when the image is missing;
 * - 'always': on every create; 'if-not-present': only when missing; 'never': never (the image must
 *   be on the host already, e.g. an air-gapped host loaded with `docker load`).
 */
export const PULL_POLICIES = ['auto', 'always', 'if-not-present', 'never'] as const;
export type PullPolicy = (typeof PULL_POLICIES)[number];

/** Whether the reference names a moving tag: no tag or `latest`, and no digest. */
export function isMovingTag(ref: string): boolean {
  if (ref.includes('@')) return false;
  const colon = ref.lastIndexOf(':');
  return colon <= ref.lastIndexOf('/') || ref.slice(colon + 1) === 'latest';
}

export type PullDecision = 'pull' | 'use-present' | 'missing';

/** What to do before a create, given the policy and whether the engine has the image. */
export function pullDecision(policy: PullPolicy, ref: string, present: boolean): PullDecision {
  switch (policy) {
    case 'always':
      return 'pull';
    case 'never':
      return present ? 'use-present' : 'missing';
    case 'if-not-present':
      return present ? 'use-present' : 'pull';
    case 'auto':
      return present && !isMovingTag(ref) ? 'use-present' : 'pull';
  }
}

/** Why `ref` may not be used on this host, or undefined. `allowed` empty = any registry. */
export function registryRefusal(ref: string, allowed: readonly string[]): string | undefined {
  if (allowed.length === 0) return undefined;
  const host = registryHost(ref);
  if (allowed.includes(host)) return undefined;
  return `docker_image "${ref}" comes from the registry ${host}, which this host does not pull from (pull.allowed_registries: ${allowed.join(', ')}); use an image from an allowed registry, or ask the host's operator to allow ${host}`;
}
