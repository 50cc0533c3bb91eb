import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImageCollector, measureWithStatfs, type ImageGcEngine, type ImageGcSettings } from '../../../src/reconcile/image-gc.js';
import { PulledImages } from '../../../src/reconcile/pulled-images.js';
import type { ContainerImageUse, EngineImage } from '../../../src/runtime/container-runtime.js';
import { AgentError, ErrorCodes } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { Writable } from 'node:stream';

const GB = 1e9;

/** An engine with images and containers in memory; removal drops a tag (and the image with its last). */
class FakeImageEngine implements ImageGcEngine {
  images: EngineImage[] = [];
  users: ContainerImageUse[] = [];
  removed: string[] = [];
  refuse = new Set<string>();
  calls = 0;
  async dataRoot(): Promise<string> {
    return '/var/lib/docker';
  }
  async listImages(): Promise<EngineImage[]> {
    this.calls++;
    return this.images.map((i) => ({ ...i }));
  }
  async containerImages(): Promise<ContainerImageUse[]> {
    return [...this.users];
  }
  async removeImage(ref: string): Promise<void> {
    if (this.refuse.has(ref)) throw new AgentError(ErrorCodes.DOCKER_CONFLICT, `conflict: unable to remove ${ref}: image is being used`);
    const image = this.images.find((i) => i.repoTags.includes(ref));
    if (!image) throw new AgentError(ErrorCodes.DOCKER_NOT_FOUND, `no such image: ${ref}`);
    image.repoTags = image.repoTags.filter((t) => t !== ref);
    if (image.repoTags.length === 0) this.images = this.images.filter((i) => i !== image);
    this.removed.push(ref);
  }
}

const image = (tag: string, gb: number): EngineImage => ({ id: `sha256:${tag}`, repoTags: [tag], repoDigests: [], sizeBytes: gb * GB });

let dir: string;
/** The stores of the running test: they save in the background, so cleanup waits for them first. */
const stores: PulledImages[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cyberun-gc-'));
});
afterEach(async () => {
  // A save still writing its temp file while rm walks the directory made rm fail with ENOTEMPTY.
  await Promise.all(stores.splice(0).map((s) => s.flush()));
  await rm(dir, { recursive: true, force: true });
});

function setup(usedGb: () => number, over: Partial<ImageGcSettings> = {}, desired: string[] = []) {
  const engine = new FakeImageEngine();
  const store = new PulledImages(dir);
  stores.push(store);
  const removed: [string, number][] = [];
  let lines = '';
  const logger = createLogger({ level: 'info', destination: new Writable({ write: (c, _e, cb) => { lines += c.toString(); cb(); } }) });
  const settings: ImageGcSettings = { enabled: true, highPercent: 85, lowPercent: 80, minAgeMs: 0, intervalMs: 60_000, ...over };
  const gc = new ImageCollector({
    engine,
    store,
    settings: () => settings,
    desiredImages: () => desired,
    logger,
    now: () => 1_000_000,
    observer: { observeImageRemoved: (ref, bytes) => removed.push([ref, bytes]) },
    measure: async () => ({ usedBytes: usedGb() * GB, totalBytes: 100 * GB }),
  });
  return { engine, store, gc, removed, logs: () => lines.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('ImageCollector', () => {
  it('above the high threshold removes the unused pulled image, keeps what is used, desired or not pulled, logs and counts each removal', async () => {
    let used = 90;
    const t = setup(() => used, {}, ['docker.io/library/desired:1']);
    t.engine.images = [image('old:1', 12), image('running:1', 9), image('desired:1', 9), image('operator:1', 30)];
    t.engine.users = [{ containerId: 'c1', imageId: 'sha256:running:1' }];
    for (const ref of ['old:1', 'running:1', 'desired:1']) t.store.recordPull(ref, 0);
    t.engine.removeImage = ((orig) => async (ref: string) => {
      await orig(ref);
      used -= 12;
    })(t.engine.removeImage.bind(t.engine));
    t.gc.trigger();
    await t.gc.idle();
    expect(t.engine.removed).toEqual(['old:1']);
    expect(t.engine.images.map((i) => i.repoTags[0])).toEqual(['running:1', 'desired:1', 'operator:1']);
    expect(t.removed).toEqual([['old:1', 12 * GB]]);
    expect(t.store.list().map((r) => r.ref).sort()).toEqual(['desired:1', 'running:1']);
    // The image a container uses was used now.
    expect(t.store.list().find((r) => r.ref === 'running:1')?.lastUsedAt).toBe(1_000_000);
    expect(t.logs().find((l) => l['msg'] === 'removed an unused image the agent pulled')).toMatchObject({ image: 'old:1', imageId: 'sha256:old:1', bytesFreed: 12e9 });
    expect(t.gc.diskStatus()).toEqual({ path: '/var/lib/docker', usedBytes: 78 * GB, totalBytes: 100 * GB, usedPercent: 78, measuredAt: 1_000_000 });
  });

  it('under the threshold removes nothing, and status still shows the usage', async () => {
    const t = setup(() => 50);
    t.engine.images = [image('old:1', 12)];
    t.store.recordPull('old:1', 0);
    t.gc.trigger();
    await t.gc.idle();
    expect(t.engine.removed).toEqual([]);
    expect(t.gc.diskStatus()?.usedPercent).toBe(50);
  });

  it('switched off: measures for status, lists and removes nothing', async () => {
    const t = setup(() => 99, { enabled: false });
    t.engine.images = [image('old:1', 12)];
    t.store.recordPull('old:1', 0);
    t.gc.trigger();
    await t.gc.idle();
    expect(t.engine.removed).toEqual([]);
    expect(t.engine.calls).toBe(0);
    expect(t.gc.diskStatus()?.usedPercent).toBe(99);
  });

  it('an image the engine refuses to remove (a container appeared) stays, and the record keeps it', async () => {
    const t = setup(() => 99);
    t.engine.images = [image('old:1', 12)];
    t.engine.refuse.add('old:1');
    t.store.recordPull('old:1', 0);
    t.gc.trigger();
    await t.gc.idle();
    expect(t.engine.images).toHaveLength(1);
    expect(t.store.has('old:1')).toBe(true);
    expect(t.logs().find((l) => l['msg'] === 'image not removed; it stays')).toMatchObject({ image: 'old:1' });
  });

  it('forgets a pulled image someone else removed', async () => {
    const t = setup(() => 10);
    t.store.recordPull('gone:1', 0);
    t.gc.trigger();
    await t.gc.idle();
    expect(t.store.has('gone:1')).toBe(false);
  });

  it('where the data root cannot be measured here, says so once and lists nothing', async () => {
    const t = setup(() => 99);
    const gc = new ImageCollector({ engine: t.engine, store: t.store, settings: () => ({ enabled: true, highPercent: 0, lowPercent: 0, minAgeMs: 0, intervalMs: 60_000 }), desiredImages: () => [], logger: createLogger({ level: 'silent' }), now: () => 0, measure: (p) => measureWithStatfs(path.join(dir, 'no-such', p)) });
    gc.trigger();
    await gc.idle();
    gc.trigger();
    await gc.idle();
    expect(t.engine.calls).toBe(0);
    expect(gc.diskStatus()).toBeUndefined();
  });

  it('measures a real filesystem as df does', async () => {
    const u = await measureWithStatfs(dir);
    expect(u.totalBytes).toBeGreaterThan(0);
    expect(u.usedBytes).toBeGreaterThanOrEqual(0);
    expect(u.usedBytes).toBeLessThanOrEqual(u.totalBytes);
  });

  it('triggers during a check coalesce into one more check', async () => {
    const t = setup(() => 10);
    t.gc.trigger();
    t.gc.trigger();
    t.gc.trigger();
    await t.gc.idle();
    expect(t.engine.calls).toBe(2);
  });
});
