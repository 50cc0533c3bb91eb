import { describe, expect, it } from 'vitest';
import { GpuBook } from '../../../src/reconcile/gpu-book.js';
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
