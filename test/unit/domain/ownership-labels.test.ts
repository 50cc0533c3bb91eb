import { describe, expect, it } from 'vitest';
import { Labels, gpuIdsOf, replicaIndexOf, replicaLabels, serviceIdOf, serviceSlugOf, specHashOf } from '../../../src/domain/ownership-labels.js';

describe('ownership label codec', () => {
  it('reads back what replicaLabels wrote', () => {
    const labels = replicaLabels({ agentId: 'a1', serviceId: 's1', serviceSlug: 'llm', replicaIndex: 3, specHash: 'abc', gpuIds: ['0', '2'] });
    const c = { labels };
    expect(labels[Labels.MANAGED]).toBe('true');
    expect(labels[Labels.AGENT_ID]).toBe('a1');
    expect([serviceIdOf(c), serviceSlugOf(c), replicaIndexOf(c), specHashOf(c), gpuIdsOf(c)]).toEqual(['s1', 'llm', 3, 'abc', ['0', '2']]);
  });

  it.each([
    ['missing', undefined, -1],
    ['negative', '-1', -1],
    ['not a number', 'x', -1],
    ['fraction', '1.5', -1],
    ['padded', ' 2 ', 2],
    ['zero', '0', 0],
  ])('replica index %s (%s) → %s', (_what, value, expected) => {
    expect(replicaIndexOf({ labels: value === undefined ? {} : { [Labels.REPLICA]: value } })).toBe(expected);
  });

  it.each([
    [undefined, undefined],
    ['', []],
    ['0, 1,', ['0', '1']],
  ])('GPU label %s → %s', (value, expected) => {
    expect(gpuIdsOf({ labels: value === undefined ? {} : { [Labels.GPUS]: value } })).toEqual(expected);
  });
});
