import { describe, expect, it } from 'vitest';
import { chooseImagesToRemove, familiarImageRef, type GcInput, type PulledImage } from '../../../src/domain/image-gc.js';

const GB = 1e9;
const MIN = 60_000;
const NOW = 1_750_000_000_000;

/** A pulled image: `ref` is its only tag unless `tags` says otherwise; last used `ago` ms before NOW. */
function img(ref: string, sizeGb: number, ago: number, over: Partial<PulledImage> = {}): PulledImage {
  return { ref, imageId: `sha256:${ref}`, sizeBytes: sizeGb * GB, repoTags: [ref], lastUsedAt: NOW - ago, ...over };
}

/** Disk of 100 GB with `usedGb` used, default thresholds 85/80, min age 5 minutes. */
function input(usedGb: number, images: PulledImage[], over: Partial<GcInput> = {}): GcInput {
  return {
    usage: { usedBytes: usedGb * GB, totalBytes: 100 * GB },
    highPercent: 85,
    lowPercent: 80,
    images,
    inUse: new Set(),
    desiredRefs: new Set(),
    minAgeMs: 5 * MIN,
    now: NOW,
    ...over,
  };
}

const vllm1 = img('vllm/vllm-openai:v0.6.0', 9, 60 * MIN);
const vllm2 = img('vllm/vllm-openai:v0.6.1', 9, 30 * MIN);
const tgi = img('ghcr.io/huggingface/text-generation-inference:2.4', 7, 90 * MIN);
const comfy = img('comfyui:latest', 12, 10 * MIN);

describe('chooseImagesToRemove', () => {
  it.each<[string, GcInput, string[]]>([
    ['below the high threshold: nothing', input(84, [vllm1, tgi]), []],
    ['exactly at the high threshold: nothing', input(85, [vllm1, tgi]), []],
    ['above: least recently used first, until at or below low (90 → 83 → 74)', input(90, [vllm1, vllm2, tgi]), [tgi.ref, vllm1.ref]],
    ['one removal may be enough (86 → 79)', input(86, [vllm1, tgi]), [tgi.ref]],
    ['not enough candidates: every candidate goes', input(99, [vllm1, tgi]), [tgi.ref, vllm1.ref]],
    ['an image a container uses (any container, any state) stays', input(90, [vllm1, tgi], { inUse: new Set([tgi.imageId]) }), [vllm1.ref]],
    ['an image a desired service names stays (a stopped service starts again)', input(90, [vllm1, tgi], { desiredRefs: new Set([tgi.ref]) }), [vllm1.ref]],
    [
      'an image whose other reference is desired stays (same id)',
      input(90, [img('a:1', 7, 90 * MIN, { imageId: 'sha256:x', repoTags: ['a:1', 'a:latest'] }), img('a:latest', 7, 90 * MIN, { imageId: 'sha256:x', repoTags: ['a:1', 'a:latest'] })], { desiredRefs: new Set(['a:latest']) }),
      [],
    ],
    ['younger than min_age (used 4 minutes ago) stays', input(90, [img('new:1', 20, 4 * MIN), tgi]), [tgi.ref]],
    ['exactly min_age old is old enough', input(90, [img('edge:1', 20, 5 * MIN)]), ['edge:1']],
    ['min_age 0 takes even a just-used image', input(90, [img('now:1', 20, 0)], { minAgeMs: 0 }), ['now:1']],
    ['ties in last use: the larger first', input(95, [img('small:1', 5, 60 * MIN), img('big:1', 15, 60 * MIN)]), ['big:1']],
    ['thresholds 0/0 collect every candidate at once', input(60, [vllm1, vllm2, tgi, comfy], { highPercent: 0, lowPercent: 0, minAgeMs: 0 }), [tgi.ref, vllm1.ref, vllm2.ref, comfy.ref]],
    ['no images pulled: nothing', input(99, []), []],
    ['an empty (unknown) filesystem: nothing', input(0, [vllm1], { usage: { usedBytes: 0, totalBytes: 0 } }), []],
  ])('%s', (_name, gc, want) => {
    expect(chooseImagesToRemove(gc).remove.map((r) => r.ref)).toEqual(want);
  });

  it('counts an image as freed only when no other tag keeps it; another tool’s tag keeps it (removal only untags)', () => {
    const shared = { imageId: 'sha256:s', repoTags: ['mine:1', 'operator/own:1'] };
    const plan = chooseImagesToRemove(input(90, [img('mine:1', 20, 120 * MIN, shared), tgi]));
    // mine:1 (least recently used) frees nothing: operator/own:1 keeps the image. So tgi goes too.
    expect(plan.remove).toEqual([
      { ref: 'mine:1', imageId: 'sha256:s', expectedFreedBytes: 0 },
      { ref: tgi.ref, imageId: tgi.imageId, expectedFreedBytes: 7 * GB },
    ]);
  });

  it('two tags the agent pulled of one image: the size is freed with the second', () => {
    const both = { imageId: 'sha256:t', repoTags: ['t:1', 't:latest'] };
    const plan = chooseImagesToRemove(input(90, [img('t:1', 10, 60 * MIN, both), img('t:latest', 10, 50 * MIN, both)]));
    expect(plan.remove).toEqual([
      { ref: 't:1', imageId: 'sha256:t', expectedFreedBytes: 0 },
      { ref: 't:latest', imageId: 'sha256:t', expectedFreedBytes: 10 * GB },
    ]);
  });

  it('says why it stopped', () => {
    expect(chooseImagesToRemove(input(50, [vllm1])).note).toBe('usage 50.0% is not above 85%');
    expect(chooseImagesToRemove(input(86, [vllm1, tgi])).note).toBe('expected usage 79.0% is at or below 80%');
    expect(chooseImagesToRemove(input(99, [vllm1], { inUse: new Set([vllm1.imageId]) })).note).toBe('no more images to remove (0 candidates of 1 pulled)');
    expect(chooseImagesToRemove(input(90.5, [])).usedPercent).toBeCloseTo(90.5);
  });
});

describe('familiarImageRef', () => {
  it.each([
    ['nginx', 'nginx:latest'],
    ['nginx:alpine', 'nginx:alpine'],
    ['docker.io/library/nginx:alpine', 'nginx:alpine'],
    ['library/nginx', 'nginx:latest'],
    ['vllm/vllm-openai:latest', 'vllm/vllm-openai:latest'],
    ['docker.io/vllm/vllm-openai', 'vllm/vllm-openai:latest'],
    ['127.0.0.1:5000/gc-a', '127.0.0.1:5000/gc-a:latest'],
    ['127.0.0.1:5000/gc-a:1', '127.0.0.1:5000/gc-a:1'],
    ['ghcr.io/huggingface/text-generation-inference:2.4', 'ghcr.io/huggingface/text-generation-inference:2.4'],
    ['localhost/library/x', 'localhost/library/x:latest'],
    [`x@sha256:${'a'.repeat(64)}`, `x@sha256:${'a'.repeat(64)}`],
  ])('%s → %s', (ref, want) => {
    expect(familiarImageRef(ref)).toBe(want);
  });
});
