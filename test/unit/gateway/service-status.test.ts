import { describe, expect, it } from 'vitest';

import type { ServiceStatusReport } from '../../../src/domain/status-types.js';
import type { ServicePlacement } from '../../../src/gateway/placement.js';
import { deriveServiceStatus, type AgentReport, type StatusInput } from '../../../src/gateway/service-status.js';

const report = (over: Partial<ServiceStatusReport> = {}): ServiceStatusReport => ({
  serviceId: 's',
  slug: 'svc',
  state: 'running',
  reason: undefined,
  desiredReplicas: 1,
  readyReplicas: 1,
  replicas: [],
  specHash: 'h',
  warnings: [],
  updatedAt: 0,
  ...over,
});
const from = (agentId: string, over: Partial<ServiceStatusReport> = {}, receivedAt = 100): AgentReport => ({ agentId, report: report(over), receivedAt });
const placed = (...assignments: [string, number][]): ServicePlacement => ({
  serviceId: 's',
  assignments: assignments.map(([agentId, replicas]) => ({ agentId, replicas })),
  reason: undefined,
});
const base: StatusInput = { lifecycle: 'deployed', serviceType: 'deployed', deployedAt: 50, placement: placed(['h1', 1]), reports: [] };

const rows: { name: string; input: Partial<StatusInput>; status: string; reason?: RegExp }[] = [
  { name: 'created', input: { lifecycle: 'created', placement: undefined }, status: 'created' },
  { name: 'deployed, no report yet', input: {}, status: 'deploying', reason: /waiting for agent h1/ },
  {
    name: 'its agent disconnected, placement held',
    input: { departed: new Map([['h1', { since: Date.parse('2026-12-02T10:00:00Z'), until: Date.parse('2026-12-02T10:01:00Z') }]]) },
    status: 'deploying',
    reason: /^agent h1 disconnected at 2026-12-02T10:00:00\.000Z; its replicas go to other agents at 2026-12-02T10:01:00\.000Z unless it reconnects$/,
  },
  {
    name: 'another agent disconnected, its own one ready',
    input: { reports: [from('h1')], departed: new Map([['h2', { since: 0, until: 1 }]]) },
    status: 'running',
  },
  {
    name: 'deployed, nobody eligible',
    input: { placement: { serviceId: 's', assignments: [], reason: 'no connected agent has labels [gpu-h100]' } },
    status: 'deploying',
    reason: /labels \[gpu-h100\]/,
  },
  { name: 'ready on its only agent', input: { reports: [from('h1')] }, status: 'running' },
  { name: 'agent still pulling', input: { reports: [from('h1', { state: 'deploying', readyReplicas: 0, reason: 'pulling image' })] }, status: 'deploying', reason: /h1: pulling image/ },
  {
    name: 'one of two agents ready',
    input: { placement: placed(['h1', 2], ['h2', 1]), reports: [from('h1', { readyReplicas: 2 }), from('h2', { state: 'deploying', readyReplicas: 0 })] },
    status: 'deploying',
  },
  {
    name: 'both agents ready',
    input: { placement: placed(['h1', 2], ['h2', 1]), reports: [from('h1', { readyReplicas: 2 }), from('h2')] },
    status: 'running',
  },
  { name: 'running but fewer ready than assigned', input: { placement: placed(['h1', 2]), reports: [from('h1', { readyReplicas: 1 })] }, status: 'deploying' },
  { name: 'agent reports failed', input: { reports: [from('h1', { state: 'failed', reason: 'crash loop: exit 1' })] }, status: 'failed', reason: /h1: crash loop/ },
  { name: 'failed beats ready elsewhere', input: { placement: placed(['h1', 1], ['h2', 1]), reports: [from('h1'), from('h2', { state: 'failed' })] }, status: 'failed' },
  { name: 'failed from an agent it is no longer placed on is ignored', input: { reports: [from('h1'), from('h9', { state: 'failed' })] }, status: 'running' },
  { name: 'reports older than the last deploy are ignored', input: { deployedAt: 200, reports: [from('h1', {}, 100)] }, status: 'deploying' },
  { name: 'stale failure before redeploy is ignored', input: { deployedAt: 200, reports: [from('h1', { state: 'failed' }, 100)] }, status: 'deploying' },
  { name: 'external running', input: { serviceType: 'external', reports: [from('h1', { readyReplicas: 0 })] }, status: 'running' },
  { name: 'undeployed, still reported', input: { lifecycle: 'undeployed', placement: undefined, reports: [from('h1', { state: 'stopping' })] }, status: 'stopping', reason: /h1/ },
  { name: 'undeployed, reported only as stopped', input: { lifecycle: 'undeployed', placement: undefined, reports: [from('h1', { state: 'stopped' })] }, status: 'stopped' },
  { name: 'undeployed, no reports', input: { lifecycle: 'undeployed', placement: undefined }, status: 'stopped' },
];

describe('deriveServiceStatus', () => {
  it.each(rows)('$name → $status', ({ input, status, reason }) => {
    const out = deriveServiceStatus({ ...base, ...input });
    expect(out.status).toBe(status);
    if (reason !== undefined) expect(out.reason).toMatch(reason);
    if (status === 'running' || status === 'created' || status === 'stopped') expect(out.reason).toBeUndefined();
  });
});
