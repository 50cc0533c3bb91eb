import { describe, expect, it } from 'vitest';
import { GpuBook } from '../../../src/reconcile/gpu-book.js';
import { moveOffUnhealthyGpus } from '../../../src/reconcile/gpu-health-moves.js';
import type { Action } from '../../../src/domain/replica-planner.js';
import type { RestartVerdict } from '../../../src/domain/gpu-allocator.js';
import type { ObservedContainer } from '../../../src/domain/observed-container.js';
import { fixtureGpus } from '../../fixtures/hosts/gpu-devices.js';

const GPUS = fixtureGpus('a100x4');

function container(id: string, serviceId: string, replica: number, gpus: string): ObservedContainer {
  return {
    id,
    name: id,
    image: 'img',
    labels: { 'cloud.cyberun.service-id': serviceId, 'cloud.cyberun.service-slug': serviceId, 'cloud.cyberun.replica': String(replica), 'cloud.cyberun.gpus': gpus },
    state: 'running',
    createdAt: 0,
    startedAt: undefined,
    finishedAt: undefined,
    exitCode: undefined,
    oomKilled: false,
    error: undefined,
    ipAddress: undefined,
    publishedPort: undefined,
    gpuDeviceIds: [],
  };
}

function book() {
  let released = 0;
  const b = new GpuBook(() => GPUS, () => (released += 1));
  return { b, released: () => released };
}

describe('GpuBook', () => {
  it('rebuilds claims from the labels of observed containers (agent restart)', () => {
    const { b } = book();
    b.observe('llama', [container('c1', 'llama', 0, '0,1')]);
    expect(b.claims()).toEqual([{ serviceId: 'llama', serviceSlug: 'llama', replicaIndex: 0, gpuIds: ['0', '1'] }]);
    expect(b.freeCount()).toBe(2);
    expect(b.reserve('sdxl', 'sdxl', 0, 2)).toEqual({ kind: 'allocated', gpuIds: ['2', '3'] });
  });

  it('a reservation holds its GPUs between allocation and creation, so nobody else gets them', () => {
    const { b } = book();
    expect(b.reserve('a', 'a', 0, 3)).toMatchObject({ kind: 'allocated', gpuIds: ['0', '1', '2'] });
    expect(b.reserve('b', 'b', 0, 2)).toMatchObject({ kind: 'pending' });
    b.bind('a', 0, 'ca');
    expect(b.reserve('b', 'b', 0, 2)).toMatchObject({ kind: 'pending' });
    expect(b.reserve('b', 'b', 0, 1)).toEqual({ kind: 'allocated', gpuIds: ['3'] });
  });

  it('releasing a container or dropping a reservation frees its GPUs and says so', () => {
    const { b, released } = book();
    b.reserve('a', 'a', 0, 4);
    b.unreserve('a', 0);
    expect(released()).toBe(1);
    b.observe('a', [container('c1', 'a', 0, '0,1,2,3')]);
    b.release('c1');
    expect(released()).toBe(2);
    expect(b.freeCount()).toBe(4);
  });

  it('an observe with fewer GPUs held reports a release; one without change does not', () => {
    const { b, released } = book();
    b.observe('a', [container('c1', 'a', 0, '0'), container('c2', 'a', 1, '1')]);
    b.observe('a', [container('c1', 'a', 0, '0'), container('c2', 'a', 1, '1')]);
    expect(released()).toBe(0);
    b.observe('a', [container('c1', 'a', 0, '0')]);
    expect(released()).toBe(1);
  });

  it('a recreated replica gets the GPUs it held before, although lower ones are free', () => {
    const { b } = book();
    b.observe('a', [container('c1', 'a', 0, '2,3')]);
    b.release('c1');
    expect(b.reserve('a', 'a', 0, 2)).toEqual({ kind: 'allocated', gpuIds: ['2', '3'] });
  });

  it('names GPUs a container holds that the inventory no longer lists', () => {
    const { b } = book();
    const c = container('c1', 'a', 0, '3,7');
    expect(b.idsOf(c)).toEqual(['3', '7']);
    expect(b.missing(b.idsOf(c))).toEqual(['7']);
  });
});

describe('GpuBook with an unhealthy GPU, and the restart rewrite', () => {
  const LOST = 'nvidia-smi cannot open it: Unknown Error';
  let gpus = fixtureGpus('rtxpro6000x4').map((g) => (g.id === '1' ? { ...g, unhealthy: LOST } : g));
  const b = new GpuBook(() => gpus, () => undefined);
  const stopped = (c: ObservedContainer): ObservedContainer => ({ ...c, state: 'exited', exitCode: 1 });
  const start = (index: number, containerId: string): Action => ({ kind: 'start', index, containerId, reason: 'exited with code 1' });

  it('free GPUs and faults leave the unhealthy GPU out', () => {
    b.observe('llm', [container('c0', 'llm', 0, '0'), stopped(container('c1', 'llm', 1, '1'))]);
    expect(b.freeCount()).toBe(2);
    expect(b.faults(['0', '1'])).toBe(`GPU 1 is unhealthy (${LOST})`);
    expect(b.faults(['0'])).toBeUndefined();
    expect(b.faults(['7'])).toBe('GPU 7 disappeared from the host inventory');
  });

  it.each<[string, string[], number, RestartVerdict['kind']]>([
    ['healthy GPUs: start as it is', ['0'], 0, 'keep'],
    ['an unhealthy GPU and a free healthy one: move', ['1'], 1, 'move'],
    ['a GPU the inventory lacks: move', ['9'], 1, 'move'],
  ])('restartVerdict: %s', (_what, held, index, kind) => {
    expect(b.restartVerdict('llm', 'llm', index, 1, held).kind).toBe(kind);
  });

  it('a start of the container on the unhealthy GPU becomes remove + create; a healthy one passes', () => {
    const containers = [container('c0', 'llm', 0, '0'), stopped(container('c1', 'llm', 1, '1'))];
    const moved = moveOffUnhealthyGpus([start(0, 'c0'), start(1, 'c1')], containers, b, { serviceId: 'llm', serviceSlug: 'llm', gpuCount: 1 });
    expect(moved.waiting).toEqual(new Map());
    expect(moved.actions).toEqual([
      start(0, 'c0'),
      { kind: 'remove', index: 1, containerId: 'c1', reason: `GPU 1 is unhealthy (${LOST}): restarting on healthy GPUs` },
      { kind: 'create', index: 1, name: 'cyberun-llm-1', reason: `GPU 1 is unhealthy (${LOST}): restarting on healthy GPUs` },
    ]);
  });

  it('without enough healthy GPUs free the start is dropped and the replica waits, with both reasons', () => {
    b.observe('other', [container('o0', 'other', 0, '2'), container('o1', 'other', 1, '3')]);
    const containers = [stopped(container('c1', 'llm', 1, '1'))];
    const moved = moveOffUnhealthyGpus([start(1, 'c1')], containers, b, { serviceId: 'llm', serviceSlug: 'llm', gpuCount: 1 });
    expect(moved.actions).toEqual([]);
    expect(moved.waiting.get(1)).toBe(`GPU 1 is unhealthy (${LOST}); waiting for 1 GPU: 1 of 4 is unhealthy (1: ${LOST}); 3 of 4 are held by llm (0), other (2,3)`);
  });

  it('once the GPU is healthy again the same container starts as it is', () => {
    gpus = fixtureGpus('rtxpro6000x4');
    const containers = [stopped(container('c1', 'llm', 1, '1'))];
    const moved = moveOffUnhealthyGpus([start(1, 'c1')], containers, b, { serviceId: 'llm', serviceSlug: 'llm', gpuCount: 1 });
    expect(moved.actions).toEqual([start(1, 'c1')]);
  });
});
