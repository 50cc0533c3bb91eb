import { statfs } from 'node:fs/promises';
import type { Logger } from '../log.js';
import type { ContainerImageUse, EngineImage } from '../runtime/container-runtime.js';
import { chooseImagesToRemove, familiarImageRef, type DiskUsage, type PulledImage } from '../domain/image-gc.js';
import { ErrorCodes, errorMessage, isAgentError } from '../errors.js';
import type { PulledImages } from './pulled-images.js';

/** What the collector needs from the engine (ContainerRuntime has it). */
export interface ImageGcEngine {
  /** The engine's data root (DockerRootDir). */
  dataRoot(): Promise<string>;
  listImages(): Promise<EngineImage[]>;
  /** Every container on the engine, any state, any owner: the image each was created from. */
  containerImages(): Promise<ContainerImageUse[]>;
  /** Removes one reference, never forced: DOCKER_CONFLICT while a container uses it. */
  removeImage(ref: string): Promise<void>;
}

export interface ImageGcSettings {
  enabled: boolean;
  highPercent: number;
  lowPercent: number;
  minAgeMs: number;
  intervalMs: number;
}

/** Usage of the data root's filesystem as last measured, for `status`. */
export interface DiskStatus {
  path: string;
  usedBytes: number;
  totalBytes: number;
  usedPercent: number;
  /** Epoch ms of the measurement. */
  measuredAt: number;
}

export interface ImageGcObserver {
  /** One image reference removed; `bytes` is the engine's size of the image (0 when only untagged). */
  observeImageRemoved(ref: string, bytes: number): void;
}

export interface ImageCollectorOptions {
  engine: ImageGcEngine;
  store: PulledImages;
  /** Read at every check (a config reload may change it). */
  settings: () => ImageGcSettings;
  /** References the desired services name, as given (normalized here). */
  desiredImages: () => string[];
  logger: Logger;
  now: () => number;
  observer?: ImageGcObserver;
  /** Usage of the filesystem holding `path`; default `fs.statfs`, measured as `df` does. */
  measure?: (path: string) => Promise<DiskUsage>;
}

/** `df`'s Use%: used = blocks − free, of used + available to unprivileged users. */
export async function measureWithStatfs(path: string): Promise<DiskUsage> {
  const s = await statfs(path);
  const used = (s.blocks - s.bfree) * s.bsize;
  return { usedBytes: used, totalBytes: used + s.bavail * s.bsize };
}

/**
 * Image garbage collection on the engine's data root (kubelet image GC, Nomad `gc.image`):
 *
 *   every image_gc.interval, or at once after a pull failed for lack of space
 *     measure DockerRootDir's filesystem ─▶ list images + every container's image
 *     ─▶ refresh last-used of pulled images ─▶ chooseImagesToRemove (pure) ─▶ remove, one by one
 *
 * Only references in the PulledImages record (images the agent pulled for services) are ever
 * removed, and never forced: the engine refuses an image a container uses, and only untags an
 * image another tag still names. Checks never overlap; a failing check is logged and the next
 * one tries again. Where the data root is not on this host's filesystem (a remote engine, an agent
 * in a container without it mounted) the collector says so once and measures nothing.
 */
export class ImageCollector {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private root: string | undefined;
  private unmeasurable = false;
  private last: DiskStatus | undefined;
  private readonly measure: (path: string) => Promise<DiskUsage>;
  private readonly log: Logger;

  constructor(private readonly options: ImageCollectorOptions) {
    this.measure = options.measure ?? measureWithStatfs;
    this.log = options.logger.child({ component: 'image-gc' });
  }

  /** Starts the periodic check (the first one at once). Idempotent. */
  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.trigger(), this.options.settings().intervalMs);
    this.timer.unref?.();
    this.trigger();
  }

  stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    return this.running ?? Promise.resolve();
  }

  /** Runs a check soon; a check in progress is followed by exactly one more. Cheap, idempotent. */
  trigger(why?: string): void {
    if (why !== undefined) this.log.warn({ why }, 'checking disk usage now');
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.check().catch((err: unknown) => this.log.warn({ err }, 'image GC check failed; trying again at the next one'));
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
  }

  /** Resolves when the check in progress (if any) and its follow-up are done. */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /** The last measured usage of the data root, or undefined before the first (or where unmeasurable). */
  diskStatus(): DiskStatus | undefined {
    return this.last;
  }

  /** One check: measure; when above the high threshold, remove what the pure choice says. */
  private async check(): Promise<void> {
    const settings = this.options.settings();
    const usage = await this.usage();
    if (usage === undefined || !settings.enabled) return;
    const { engine, store } = this.options;
    const [images, users] = await Promise.all([engine.listImages(), engine.containerImages()]);
    const now = this.options.now();
    const pulled = this.pulledOnEngine(images, users, now);
    const plan = chooseImagesToRemove({
      usage,
      highPercent: settings.highPercent,
      lowPercent: settings.lowPercent,
      images: pulled,
      inUse: new Set(users.map((u) => u.imageId)),
      desiredRefs: new Set(this.options.desiredImages().map(familiarImageRef)),
      minAgeMs: settings.minAgeMs,
      now,
    });
    if (plan.remove.length === 0) {
      if (plan.usedPercent > settings.highPercent) this.log.warn({ usedPercent: round(plan.usedPercent), note: plan.note }, 'data root above image_gc.high_percent, and nothing the agent may remove');
      return;
    }
    this.log.info({ usedPercent: round(plan.usedPercent), images: plan.remove.length }, `data root above ${settings.highPercent}%: removing unused images the agent pulled`);
    for (const removal of plan.remove) {
      try {
        await engine.removeImage(removal.ref);
      } catch (err) {
        if (isAgentError(err, ErrorCodes.DOCKER_NOT_FOUND)) store.forget([removal.ref]);
        else this.log.warn({ err, image: removal.ref }, 'image not removed; it stays');
        continue;
      }
      store.forget([removal.ref]);
      this.options.observer?.observeImageRemoved(removal.ref, removal.expectedFreedBytes);
      this.log.info({ image: removal.ref, imageId: removal.imageId, bytesFreed: removal.expectedFreedBytes }, 'removed an unused image the agent pulled');
    }
    await this.usage();
  }

  /** Measures the data root, remembering the result; undefined where it cannot be measured here. */
  private async usage(): Promise<DiskUsage | undefined> {
    if (this.unmeasurable) return undefined;
    this.root ??= await this.options.engine.dataRoot();
    let usage: DiskUsage;
    try {
      usage = await this.measure(this.root);
    } catch (err) {
      this.unmeasurable = true;
      this.log.warn({ path: this.root, reason: errorMessage(err) }, "the engine's data root is not on this host's filesystem: image GC measures nothing (mount it, or set image_gc.enabled: false)");
      return undefined;
    }
    const usedPercent = usage.totalBytes > 0 ? (usage.usedBytes / usage.totalBytes) * 100 : 0;
    this.last = { path: this.root, ...usage, usedPercent: round(usedPercent), measuredAt: this.options.now() };
    return usage;
  }

  /**
   * The pulled images the engine still has, with last use refreshed: an image one of the containers
   * uses now was used now. References the engine no longer has are forgotten.
   */
  private pulledOnEngine(images: readonly EngineImage[], users: readonly ContainerImageUse[], now: number): PulledImage[] {
    const { store } = this.options;
    const byRef = new Map<string, EngineImage>();
    for (const image of images) for (const ref of [...image.repoTags, ...image.repoDigests]) byRef.set(ref, image);
    const usedIds = new Set(users.map((u) => u.imageId));
    const out: PulledImage[] = [];
    const gone: string[] = [];
    const used: string[] = [];
    for (const record of store.list()) {
      const image = byRef.get(record.ref);
      if (image === undefined) {
        gone.push(record.ref);
        continue;
      }
      if (usedIds.has(image.id)) used.push(record.ref);
      out.push({ ref: record.ref, imageId: image.id, sizeBytes: image.sizeBytes, repoTags: image.repoTags, lastUsedAt: usedIds.has(image.id) ? now : record.lastUsedAt });
    }
    store.forget(gone);
    store.touch(used, now);
    return out;
  }
}

function round(percent: number): number {
  return Math.round(percent * 10) / 10;
}
