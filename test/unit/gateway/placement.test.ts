import { describe, expect, it } from 'vitest';

import { placeServices, type Assignment, type PlacementAgent, type PlacementRequest } from '../../../src/gateway/placement.js';

const agent = (agentId: string, labels: string[] = [], gpuCount = 0): PlacementAgent => ({ agentId, labels, gpuCount });
const svc = (serviceId: string, over: Partial<PlacementRequest> = {}): PlacementRequest => ({
  serviceId,
  serviceType: 'deployed',
  requiredLabels: [],
  gpuCount: 0,
  replicaCount: 1,
  ...over,
});

interface Row {
  name: string;
  services: PlacementRequest[];
  agents: PlacementAgent[];
  previous?: Map<string, Assignment[]>;
  /** serviceId → "agent:replicas,…" or "!reason" */
  want: Record<string, string>;
}

const rows: Row[] = [
  { name: 'no agents', services: [svc('a')], agents: [], want: { a: '!no agent is connected' } },
  { name: 'one agent, one replica', services: [svc('a')], agents: [agent('h1')], want: { a: 'h1:1' } },
  { name: 'tie broken by agent id', services: [svc('a')], agents: [agent('h2'), agent('h1')], want: { a: 'h1:1' } },
  { name: 'replicas spread', services: [svc('a', { replicaCount: 3 })], agents: [agent('h1'), agent('h2')], want: { a: 'h1:2,h2:1' } },
  { name: 'least loaded first across services', services: [svc('a'), svc('b')], agents: [agent('h1'), agent('h2')], want: { a: 'h1:1', b: 'h2:1' } },
  {
    name: 'required labels: only the superset agent',
    services: [svc('a', { requiredLabels: ['gpu', 'gpu-h100'], replicaCount: 2 })],
    agents: [agent('h1', ['gpu']), agent('h2', ['gpu', 'gpu-h100', 'x'])],
    want: { a: 'h2:2' },
  },
  {
    name: 'nobody has the labels',
    services: [svc('a', { requiredLabels: ['gpu-h100'] })],
    agents: [agent('h1', ['gpu'])],
    want: { a: '!no connected agent has labels [gpu-h100]' },
  },
  {
    name: 'gpu_count N needs N GPUs on the agent',
    services: [svc('a', { gpuCount: 4 })],
    agents: [agent('h1', [], 2), agent('h2', [], 8)],
    want: { a: 'h2:1' },
  },
  {
    name: 'gpu_count too large everywhere',
    services: [svc('a', { gpuCount: 4, requiredLabels: ['gpu'] })],
    agents: [agent('h1', ['gpu'], 2)],
    want: { a: '!no connected agent with labels [gpu] has 4 GPUs (gpu_count 4)' },
  },
  { name: 'gpu_count -1 needs a GPU', services: [svc('a', { gpuCount: -1 })], agents: [agent('cpu'), agent('gpu', [], 1)], want: { a: 'gpu:1' } },
  { name: 'gpu_count -1 on GPU-less hosts', services: [svc('a', { gpuCount: -1 })], agents: [agent('cpu')], want: { a: '!no connected agent has a GPU (gpu_count -1)' } },
  {
    name: 'replicas go where their GPUs still fit',
    services: [svc('a', { gpuCount: 1, replicaCount: 3 })],
    agents: [agent('h1', [], 1), agent('h2', [], 2)],
    want: { a: 'h1:1,h2:2' },
  },
  {
    name: 'over-commit when no GPUs fit anywhere (the agent queues)',
    services: [svc('a', { gpuCount: 1, replicaCount: 2 })],
    agents: [agent('h1', [], 1)],
    want: { a: 'h1:2' },
  },
  {
    name: 'external: one agent, GPUs ignored',
    services: [svc('e', { serviceType: 'external', gpuCount: 2, replicaCount: 3 })],
    agents: [agent('h1'), agent('h2')],
    want: { e: 'h1:1' },
  },
  {
    name: 'previous placement is kept while eligible',
    services: [svc('a')],
    agents: [agent('h1'), agent('h2')],
    previous: new Map([['a', [{ agentId: 'h2', replicas: 1 }]]]),
    want: { a: 'h2:1' },
  },
  {
    name: 'previous placement on a vanished agent moves',
    services: [svc('a', { replicaCount: 2 })],
    agents: [agent('h1'), agent('h3')],
    previous: new Map([['a', [{ agentId: 'h2', replicas: 1 }, { agentId: 'h3', replicas: 1 }]]]),
    want: { a: 'h1:1,h3:1' },
  },
  {
    name: 'previous placement is capped at replica_count',
    services: [svc('a', { replicaCount: 1 })],
    agents: [agent('h1'), agent('h2')],
    previous: new Map([['a', [{ agentId: 'h1', replicas: 1 }, { agentId: 'h2', replicas: 1 }]]]),
    want: { a: 'h1:1' },
  },
  {
    name: 'an agent in its disconnect grace keeps what it had and gets nothing new',
    services: [svc('a', { replicaCount: 2 }), svc('b')],
    agents: [{ ...agent('h1'), holding: true }, agent('h2')],
    previous: new Map([['a', [{ agentId: 'h1', replicas: 1 }]]]),
    want: { a: 'h1:1,h2:1', b: 'h2:1' },
  },
  {
    name: 'only agents in their grace: a new service waits, saying nobody is connected',
    services: [svc('a'), svc('b')],
    agents: [{ ...agent('h1'), holding: true }],
    previous: new Map([['a', [{ agentId: 'h1', replicas: 1 }]]]),
    want: { a: 'h1:1', b: '!no agent is connected' },
  },
  // Unhealthy GPUs: `gpuCount` is what is healthy, `gpuTotal` what the host has.
  {
    name: 'new replicas go by healthy GPUs: a 4-GPU host with one unhealthy no longer takes gpu_count 4',
    services: [svc('a', { gpuCount: 4 })],
    agents: [{ ...agent('sick', [], 3), gpuTotal: 4 }, agent('well', [], 4)],
    want: { a: 'well:1' },
  },
  {
    name: 'the reason names the unhealthy GPUs when no agent has enough healthy ones',
    services: [svc('a', { gpuCount: 4 })],
    agents: [{ ...agent('sick', [], 3), gpuTotal: 4 }, agent('small', [], 2)],
    want: { a: '!no connected agent has 4 healthy GPUs (gpu_count 4); unhealthy GPUs: sick 1 of 4' },
  },
  {
    name: '-1 on a host whose GPUs are all unhealthy',
    services: [svc('a', { gpuCount: -1 })],
    agents: [{ ...agent('sick', [], 0), gpuTotal: 1 }],
    want: { a: '!no connected agent has a healthy GPU (gpu_count -1); unhealthy GPUs: sick 1 of 1' },
  },
  {
    name: 'fitting counts healthy GPUs: replicas prefer the host with free healthy ones',
    services: [svc('a', { gpuCount: 1, replicaCount: 2 })],
    agents: [{ ...agent('h1', [], 1), gpuTotal: 4 }, agent('h2', [], 2)],
    want: { a: 'h1:1,h2:1' },
  },
  {
    name: 'replicas already placed stay on a host whose GPU turned unhealthy (no eviction)',
    services: [svc('a', { gpuCount: 4 }), svc('b', { gpuCount: 4 })],
    agents: [{ ...agent('sick', [], 3), gpuTotal: 4 }],
    previous: new Map([['a', [{ agentId: 'sick', replicas: 1 }]]]),
    want: { a: 'sick:1', b: '!no connected agent has 4 healthy GPUs (gpu_count 4); unhealthy GPUs: sick 1 of 4' },
  },
];

function show(p: { assignments: Assignment[]; reason: string | undefined }): string {
  return p.reason !== undefined ? `!${p.reason}` : p.assignments.map((a) => `${a.agentId}:${a.replicas}`).join(',');
}

describe('placeServices', () => {
  it.each(rows)('$name', ({ services, agents, previous, want }) => {
    const placed = placeServices(services, agents, previous);
    expect(Object.fromEntries(placed.map((p) => [p.serviceId, show(p)]))).toEqual(want);
  });

  it('is deterministic whatever the agent order', () => {
    const services = [svc('a', { replicaCount: 5 }), svc('b', { replicaCount: 2, gpuCount: 1 })];
    const agents = [agent('h3', [], 1), agent('h1', [], 2), agent('h2')];
    expect(placeServices(services, agents)).toEqual(placeServices(services, [...agents].reverse()));
  });

  it('places every replica when any agent is eligible', () => {
    const placed = placeServices([svc('a', { replicaCount: 10 })], [agent('h1'), agent('h2'), agent('h3')]);
    expect(placed[0]?.assignments.reduce((n, a) => n + a.replicas, 0)).toBe(10);
  });
});
