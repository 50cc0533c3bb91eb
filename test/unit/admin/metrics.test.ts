import { memoryUsage } from 'node:process';
import { getHeapSpaceStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../../src/admin/metrics.js';
import type { ReplicaStatus, ServiceStatusReport } from '../../../src/domain/status-types.js';
import type { TunnelState } from '../../../src/tunnel/tunnel-state.js';
import { parsePromText } from '../../helpers/prom-text.js';
import { fixtureGpus } from '../../fixtures/hosts/gpu-devices.js';

function replica(index: number, over: Partial<ReplicaStatus> = {}): ReplicaStatus {
  return { index, phase: 'ready', reason: undefined, containerId: `c${index}`, gpuIds: [], restartCount: 0, pull: undefined, since: 0, specHash: 'h', ...over };
}

function report(slug: string, replicas: ReplicaStatus[], over: Partial<ServiceStatusReport> = {}): ServiceStatusReport {
  return { serviceId: `svc-${slug}`, slug, state: 'running', reason: undefined, desiredReplicas: replicas.length, readyReplicas: 0, replicas, specHash: 'h', warnings: [], updatedAt: 0, ...over };
}

function setup() {
  const snapshot: ServiceStatusReport[] = [];
  let tunnel: TunnelState | undefined = { kind: 'connecting', attempt: 0 };
  const gpus = fixtureGpus('a100x4');
  gpus[3] = { ...gpus[3]!, unhealthy: 'nvidia-smi prints "GPU requires reset" for temperature.gpu' };
  const metrics = new AgentMetrics({
    agentId: 'gpu-01',
    version: '9.9.9',
    statusSnapshot: () => snapshot,
    gpus: () => gpus,
    gpuClaims: () => [{ serviceId: 'svc-llm', serviceSlug: 'llm', replicaIndex: 0, gpuIds: ['1', '2'] }],
    tunnelState: () => tunnel,
    disk: () => ({ usedBytes: 86e9, totalBytes: 100e9 }),
  });
  return { metrics, snapshot, setTunnel: (t: TunnelState | undefined) => (tunnel = t), scrape: async () => parsePromText(await metrics.text()) };
}

describe('AgentMetrics', () => {
  it('exposes valid Prometheus text with every family declared', async () => {
    const { scrape, metrics } = setup();
    metrics.observeRequest('web', 200, 0.12);
    const m = await scrape();
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const family of [
      'cyberun_agent_info',
      'cyberun_tunnel_connected',
      'cyberun_tunnel_reconnects_total',
      'cyberun_replicas',
      'cyberun_replica_restarts_total',
      'cyberun_image_pull_bytes_total',
      'cyberun_gpu_allocated',
      'cyberun_gpu_healthy',
      'cyberun_image_gc_removed_total',
      'cyberun_image_gc_removed_bytes_total',
      'cyberun_engine_data_root_bytes',
      'cyberun_proxy_requests_total',
      'cyberun_proxy_request_duration_seconds',
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
      'nodejs_heap_space_size_total_bytes',
      'nodejs_heap_space_size_used_bytes',
      'nodejs_external_memory_bytes',
    ]) {
      expect(m.types.has(family), family).toBe(true);
    }
    expect(m.value('cyberun_agent_info', { agent_id: 'gpu-01', version: '9.9.9' })).toBe(1);
    expect(m.value('process_resident_memory_bytes')).toBeGreaterThan(1_000_000);
  });

  it("shows V8's heap by space, as V8 reports it at the scrape", async () => {
    const { scrape } = setup();
    const m = await scrape();
    const spaces = getHeapSpaceStatistics();
    const labels = m.samples.filter((s) => s.name === 'nodejs_heap_space_size_total_bytes').map((s) => s.labels['space']);
    expect(labels.sort()).toEqual(spaces.map((s) => s.space_name.replace(/_space$/, '')).sort());
    for (const space of ['new', 'old', 'code']) {
      const total = m.value('nodejs_heap_space_size_total_bytes', { space }) ?? 0;
      const used = m.value('nodejs_heap_space_size_used_bytes', { space }) ?? 0;
      expect(used, space).toBeGreaterThan(0);
      expect(used, space).toBeLessThanOrEqual(total);
    }
    // The spaces' used bytes add up to the heap in use (allocations between the two reads aside).
    const used = m.samples.filter((s) => s.name === 'nodejs_heap_space_size_used_bytes').reduce((sum, s) => sum + s.value, 0);
    expect(used / memoryUsage().heapUsed).toBeGreaterThan(0.8);
    expect(used / memoryUsage().heapUsed).toBeLessThan(1.25);
    expect(m.value('nodejs_external_memory_bytes')).toBeGreaterThan(0);
  });

  it('counts restarts by positive deltas of restartCount, per replica', async () => {
    const { metrics, scrape } = setup();
    metrics.observeStatus(report('web', [replica(0), replica(1)]));
    metrics.observeStatus(report('web', [replica(0, { restartCount: 1 }), replica(1)]));
    metrics.observeStatus(report('web', [replica(0, { restartCount: 1 }), replica(1, { restartCount: 2 })]));
    metrics.observeStatus(report('web', [replica(0, { restartCount: 3 }), replica(1, { restartCount: 2 })]));
    const m = await scrape();
    expect(m.value('cyberun_replica_restarts_total', { service: 'web', replica: '0' })).toBe(3);
    expect(m.value('cyberun_replica_restarts_total', { service: 'web', replica: '1' })).toBe(2);
  });

  it('counts pulled bytes while pulling and shows the pull in progress', async () => {
    const { metrics, snapshot, scrape } = setup();
    const pulling = (current: number) => report('llm', [replica(0, { phase: 'pulling', pull: { currentBytes: current, totalBytes: 1000, etaSeconds: 5 } })], { state: 'deploying' });
    metrics.observeStatus(pulling(100));
    metrics.observeStatus(pulling(400));
    snapshot.push(pulling(700));
    metrics.observeStatus(pulling(700));
    metrics.observeStatus(report('llm', [replica(0, { phase: 'creating' })]));
    const m = await scrape();
    expect(m.value('cyberun_image_pull_bytes_total', { service: 'llm' })).toBe(700);
    expect(m.value('cyberun_image_pull_progress_bytes', { service: 'llm', kind: 'current' })).toBe(700);
    expect(m.value('cyberun_image_pull_progress_bytes', { service: 'llm', kind: 'total' })).toBe(1000);
    expect(m.value('cyberun_replicas', { service: 'llm', phase: 'pulling' })).toBe(1);
  });

  it('tracks the tunnel: connected gauge from the live state, reconnects after the first connection', async () => {
    const { metrics, setTunnel, scrape } = setup();
    expect((await scrape()).value('cyberun_tunnel_connected')).toBe(0);
    const connected: TunnelState = { kind: 'connected', since: 1 };
    for (const s of [connected, { kind: 'disconnected', reason: 'x', retryInMs: 1, attempt: 1 }, { kind: 'connecting', attempt: 1 }, connected, connected] as TunnelState[]) {
      metrics.observeTunnelState(s);
    }
    setTunnel(connected);
    const m = await scrape();
    expect(m.value('cyberun_tunnel_connected')).toBe(1);
    expect(m.value('cyberun_tunnel_reconnects_total')).toBe(2);
    setTunnel(undefined);
    expect((await scrape()).value('cyberun_tunnel_connected')).toBe(0);
  });

  it('reports GPU allocation per GPU and who holds it', async () => {
    const m = await setup().scrape();
    expect(m.samples.filter((s) => s.name === 'cyberun_gpu_allocated')).toHaveLength(4);
    expect(m.value('cyberun_gpu_allocated', { gpu: '0' })).toBe(0);
    expect(m.value('cyberun_gpu_allocated', { gpu: '1' })).toBe(1);
    expect(m.value('cyberun_gpu_holder_info', { gpu: '2', service: 'llm', replica: '0' })).toBe(1);
  });

  it('counts image GC removals and their bytes, and shows the data root usage', async () => {
    const t = setup();
    t.metrics.observeImageRemoved('old:1', 12e9);
    t.metrics.observeImageRemoved('tag-only:1', 0);
    const m = await t.scrape();
    expect(m.value('cyberun_image_gc_removed_total')).toBe(2);
    expect(m.value('cyberun_image_gc_removed_bytes_total')).toBe(12e9);
    expect(m.value('cyberun_engine_data_root_bytes', { kind: 'used' })).toBe(86e9);
    expect(m.value('cyberun_engine_data_root_bytes', { kind: 'size' })).toBe(100e9);
  });

  it('reports health per GPU: 0 for the one nvidia-smi shows broken', async () => {
    const m = await setup().scrape();
    expect(m.samples.filter((s) => s.name === 'cyberun_gpu_healthy').map((s) => [s.labels['gpu'], s.value])).toEqual([['0', 1], ['1', 1], ['2', 1], ['3', 0]]);
  });

  it('records proxied requests, errors (5xx and resets) and latency per service', async () => {
    const { metrics, scrape } = setup();
    metrics.observeRequest('web', 200, 0.02);
    metrics.observeRequest('web', 200, 3);
    metrics.observeRequest('web', 503, 0.001);
    metrics.observeRequest('web', 0, 700);
    const m = await scrape();
    expect(m.value('cyberun_proxy_requests_total', { service: 'web', code: '200' })).toBe(2);
    expect(m.value('cyberun_proxy_errors_total', { service: 'web' })).toBe(2);
    expect(m.value('cyberun_proxy_request_duration_seconds_count', { service: 'web' })).toBe(4);
    expect(m.value('cyberun_proxy_request_duration_seconds_bucket', { service: 'web', le: '0.025' })).toBe(2);
    expect(m.value('cyberun_proxy_request_duration_seconds_bucket', { service: 'web', le: '+Inf' })).toBe(4);
  });
});

describe('parsePromText (the checker itself)', () => {
  it.each([
    ['a sample of an undeclared family', 'foo 1\n'],
    ['a bad value', '# TYPE foo gauge\nfoo one\n'],
    ['bad labels', '# TYPE foo gauge\nfoo{a=b} 1\n'],
    ['no final newline', '# TYPE foo gauge\nfoo 1'],
  ])('rejects %s', (_why, text) => {
    expect(() => parsePromText(text)).toThrow();
  });
});
