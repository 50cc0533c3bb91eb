/**
 * Image garbage collection: which images to remove when the engine's data root fills up. Pure: no
 * IO, no clock (`now` is an input). The collector (src/reconcile/image-gc.ts) measures, lists and
 * removes; this decides.
 *
 * Like the kubelet's image GC (85 % high, 80 % low, unused images only, least recently used first)
 * with one rule more: only images the agent pulled itself for services are ever candidates.
 * An image the operator pulled or built, or another tool's, is never touched whatever the usage.
 */

/** Usage of the filesystem holding the engine's data root. */
export interface DiskUsage {
  usedBytes: number;
  totalBytes: number;
}

/** An image the agent pulled, as the engine lists it now, with what the agent remembers of it. */
export interface PulledImage {
  /** The reference the agent pulled (a service's `docker_image`), the name it removes. */
  ref: string;
  /** The engine's image id (sha256:…). */
  imageId: string;
  /** The image's size as the engine reports it (layers shared with other images included). */
  sizeBytes: number;
  /** Every tag the engine lists for this image id, the agent's own included. */
  repoTags: readonly string[];
  /** Epoch ms of the pull, or of the last time a container of the agent used it, whichever is later. */
  lastUsedAt: number;
}

export interface GcInput {
  usage: DiskUsage;
  /** Collect when usage is above this percentage… */
  highPercent: number;
  /** …until it is at or below this one. */
  lowPercent: number;
  /** Images the agent pulled that the engine still has. */
  images: readonly PulledImage[];
  /** Image ids used by any container on the engine, in any state (not only the agent's). */
  inUse: ReadonlySet<string>;
  /** References desired services name (their replicas may need them next, e.g. a stopped service). */
  desiredRefs: ReadonlySet<string>;
  /** An image used less than this long ago is kept. */
  minAgeMs: number;
  now: number;
}

export interface GcRemoval {
  ref: string;
  imageId: string;
  /** What removing this reference frees as far as the engine's listing tells: the image's size when
   * no other tag keeps the image, else 0 (removing the reference only untags it). */
  expectedFreedBytes: number;
}

export interface GcPlan {
  /** In removal order: least recently used first. Empty when usage is not above `highPercent`. */
  remove: GcRemoval[];
  /** Usage as a percentage, as judged. */
  usedPercent: number;
  /** Why nothing (more) is removed, for the log: under the threshold, or no candidate left. */
  note: string;
}

function percent(usage: DiskUsage): number {
  return usage.totalBytes > 0 ? (usage.usedBytes / usage.totalBytes) * 100 : 0;
}

/**
 * Decides which pulled images to remove.
 *
 * - Nothing while usage ≤ `highPercent`.
 * - Candidates: images the agent pulled that no container uses (by image id), that no desired
 *   service names (by reference, or by id: another reference of a desired image), and that were
 *   last used at least `minAgeMs` ago.
 * - Least recently used first (ties: larger first, then by reference), until the expected usage
 *   is ≤ `lowPercent`, or no candidate is left. Expected usage counts an image's size once the
 *   last of its tags on this plan goes; a tag the agent did not pull keeps the image (and it is
 *   only untagged: the engine never removes a tagged image it was not asked to).
 */
export function chooseImagesToRemove(input: GcInput): GcPlan {
  const usedPercent = percent(input.usage);
  if (usedPercent <= input.highPercent) {
    return { remove: [], usedPercent, note: `usage ${usedPercent.toFixed(1)}% is not above ${input.highPercent}%` };
  }
  const desiredIds = new Set(input.images.filter((i) => input.desiredRefs.has(i.ref)).map((i) => i.imageId));
  const candidates = input.images
    .filter((i) => !input.inUse.has(i.imageId))
    .filter((i) => !input.desiredRefs.has(i.ref) && !desiredIds.has(i.imageId))
    .filter((i) => input.now - i.lastUsedAt >= input.minAgeMs)
    .sort((a, b) => a.lastUsedAt - b.lastUsedAt || b.sizeBytes - a.sizeBytes || (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));

  const targetBytes = (input.lowPercent / 100) * input.usage.totalBytes;
  let used = input.usage.usedBytes;
  const removedRefs = new Set<string>();
  const remove: GcRemoval[] = [];
  for (const image of candidates) {
    if (used <= targetBytes) break;
    removedRefs.add(image.ref);
    const keptByOther = image.repoTags.some((tag) => tag !== image.ref && !removedRefs.has(tag));
    const expectedFreedBytes = keptByOther ? 0 : image.sizeBytes;
    used -= expectedFreedBytes;
    remove.push({ ref: image.ref, imageId: image.imageId, expectedFreedBytes });
  }
  const note = used <= targetBytes
    ? `expected usage ${percent({ usedBytes: used, totalBytes: input.usage.totalBytes }).toFixed(1)}% is at or below ${input.lowPercent}%`
    : `no more images to remove (${candidates.length} candidate${candidates.length === 1 ? '' : 's'} of ${input.images.length} pulled)`;
  return { remove, usedPercent, note };
}

/**
 * A reference as the engine lists it among an image's RepoTags (Docker's "familiar" form):
 * `docker.io/` and `library/` dropped for Docker Hub, `:latest` added when there is neither tag
 * nor digest. `nginx` → `nginx:latest`; `docker.io/library/nginx:alpine` → `nginx:alpine`;
 * `127.0.0.1:5000/x` → `127.0.0.1:5000/x:latest`. Pure.
 */
export function familiarImageRef(ref: string): string {
  let r = ref.trim();
  if (r.startsWith('docker.io/')) r = r.slice('docker.io/'.length);
  if (r.startsWith('index.docker.io/')) r = r.slice('index.docker.io/'.length);
  const first = r.split('/')[0] ?? '';
  const hasRegistry = r.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasRegistry && r.startsWith('library/')) r = r.slice('library/'.length);
  if (r.includes('@')) return r;
  const lastSlash = r.lastIndexOf('/');
  return r.lastIndexOf(':') > lastSlash ? r : `${r}:latest`;
}
