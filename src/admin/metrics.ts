import { cpuUsage, memoryUsage } from 'node:process';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { GpuClaim } from '../domain/gpu-allocator.js';
import type { ServiceStatusReport } from '../domain/status-types.js';
import type { GpuDevice } from '../domain/gpu-device.js';
import type { TunnelState } from '../tunnel/tunnel-state.js';

/**
 * What the proxy reports per finished request. The agent passes `agent.proxyMetrics` to the proxy;
 * tests and standalone proxies use NOOP_PROXY_METRICS.
 *
 * `observeRequest` is called once per proxied request, when its response ends or the stream is
 * reset: `status` is the HTTP status sent to the caller, or 0 when no status could be sent (stream
 * reset, upstream died before headers); `seconds` runs from `stream.open` to that moment. Must not
 * throw and must stay cheap (it runs on the data path).
 */
export interface ProxyMetrics {
  observeRequest(serviceSlug: string, status: number, seconds: number): void;
}

export const NOOP_PROXY_METRICS: ProxyMetrics = { observeRequest: () => undefined };

/** Live views the metrics read at scrape time (no copies kept). */
export interface MetricsSources {
  agentId: string;
  version: string;
  statusSnapshot: () => ServiceStatusReport[];
  gpus: () => GpuDevice[];
  gpuClaims: () => GpuClaim[];
  /** undefined when the agent runs without a tunnel (standalone). */
  tunnelState: () => TunnelState | undefined;
  /** Usage of the engine's data root as image GC last measured it; undefined before (or where unmeasurable). */
  disk?: () => { usedBytes: number; totalBytes: number } | undefined;
}

/** Latency buckets for model serving: from cached answers to long non-streamed completions. */
const LATENCY_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * The agent's Prometheus metrics, on a registry of its own (no prom-client global state). Gauges
 * are computed from the live sources at scrape time; counters move with events fed in by the
 * composition root (`observeStatus`, `observeTunnelState`) and the proxy (`observeRequest`).
 * Process metrics are computed at scrape time too: nothing here runs a timer while idle.
 */
export class AgentMetrics implements ProxyMetrics {
  readonly registry = new Registry();
  private readonly restarts: Counter<'service' | 'replica'>;
  private readonly pullBytes: Counter<'service'>;
  private readonly reconnects: Counter;
  private readonly requests: ProxyRequestFamilies;
  private readonly gcImages: Counter;
  private readonly gcBytes: Counter;
  /** Last restartCount / pulled bytes seen per `${serviceId}\0${index}`. */
  private readonly lastRestarts = new Map<string, number>();
  private readonly lastPulled = new Map<string, number>();
  private everConnected = false;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    new Gauge({ name: 'cyberun_agent_info', help: 'Agent identity; always 1.', labelNames: ['agent_id', 'version'], registers }).set(
      { agent_id: sources.agentId, version: sources.version },
      1,
    );
    new Gauge({
      name: 'cyberun_tunnel_connected',
      help: '1 while the tunnel to the gateway is connected (welcomed), else 0 (also without a gateway).',
      registers,
      collect() {
        this.set(sources.tunnelState()?.kind === 'connected' ? 1 : 0);
      },
    });
    this.reconnects = new Counter({ name: 'cyberun_tunnel_reconnects_total', help: 'Tunnel connections established after the first one.', registers });
    new Gauge({
      name: 'cyberun_replicas',
      help: 'Replicas per service and phase.',
      labelNames: ['service', 'phase'],
      registers,
      collect() {
        this.reset();
        for (const s of sources.statusSnapshot()) for (const r of s.replicas) this.inc({ service: s.slug, phase: r.phase });
      },
    });
    new Gauge({
      name: 'cyberun_services',
      help: 'Services per state.',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const s of sources.statusSnapshot()) this.inc({ state: s.state });
      },
    });
    this.restarts = new Counter({ name: 'cyberun_replica_restarts_total', help: 'Replica restarts done by the agent.', labelNames: ['service', 'replica'], registers });
    this.pullBytes = new Counter({
      name: 'cyberun_image_pull_bytes_total',
      help: 'Image bytes downloaded for replicas in the pulling phase (a pull shared by replicas counts once per replica).',
      labelNames: ['service'],
      registers,
    });
    new Gauge({
      name: 'cyberun_image_pull_progress_bytes',
      help: 'Bytes of the image pull in progress per replica: kind="current" downloaded, kind="total" known so far.',
      labelNames: ['service', 'replica', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const s of sources.statusSnapshot()) {
          for (const r of s.replicas) {
            if (r.phase !== 'pulling' || r.pull === undefined) continue;
            this.set({ service: s.slug, replica: String(r.index), kind: 'current' }, r.pull.currentBytes);
            this.set({ service: s.slug, replica: String(r.index), kind: 'total' }, r.pull.totalBytes);
          }
        }
      },
    });
    new Gauge({
      name: 'cyberun_gpu_allocated',
      help: '1 when the GPU is held by a replica, else 0; one series per GPU of the inventory.',
      labelNames: ['gpu', 'model'],
      registers,
      collect() {
        this.reset();
        const held = new Set(sources.gpuClaims().flatMap((c) => c.gpuIds));
        for (const g of sources.gpus()) this.set({ gpu: g.id, model: g.model }, held.has(g.id) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'cyberun_gpu_healthy',
      help: '1 while the GPU may be given to new replicas, 0 while nvidia-smi shows it broken (lost, needing a reset, reading errors, no longer listed); one series per GPU.',
      labelNames: ['gpu', 'model'],
      registers,
      collect() {
        this.reset();
        for (const g of sources.gpus()) this.set({ gpu: g.id, model: g.model }, g.unhealthy === undefined ? 1 : 0);
      },
    });
    new Gauge({
      name: 'cyberun_gpu_holder_info',
      help: 'Which replica holds which GPU; always 1.',
      labelNames: ['gpu', 'service', 'replica'],
      registers,
      collect() {
        this.reset();
        for (const c of sources.gpuClaims()) for (const gpu of c.gpuIds) this.set({ gpu, service: c.serviceSlug, replica: String(c.replicaIndex) }, 1);
      },
    });
    this.gcImages = new Counter({ name: 'cyberun_image_gc_removed_total', help: 'Image references image GC removed (images the agent pulled, unused, not desired).', registers });
    this.gcBytes = new Counter({ name: 'cyberun_image_gc_removed_bytes_total', help: 'Engine-reported size of the images image GC removed (0 for a reference that only untagged an image).', registers });
    new Gauge({
      name: 'cyberun_engine_data_root_bytes',
      help: "The filesystem holding the engine's data root (DockerRootDir), as image GC last measured it: kind=\"used\" or \"size\".",
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        const d = sources.disk?.();
        if (d === undefined) return;
        this.set({ kind: 'used' }, d.usedBytes);
        this.set({ kind: 'size' }, d.totalBytes);
      },
    });
    this.requests = new ProxyRequestFamilies(this.registry);
    const started = Date.now() / 1000 - process.uptime();
    new Gauge({ name: 'process_start_time_seconds', help: 'Start time of the process since the epoch in seconds.', registers }).set(started);
    new Gauge({ name: 'process_resident_memory_bytes', help: 'Resident memory size in bytes.', registers, collect() { this.set(memoryUsage.rss()); } });
    // V8's heap by space (prom-client's default names), so that RSS can be told apart: the young
    // generation ("new_space") grows to its bound under sustained traffic and shrinks only after
    // the process has gone quiet (docs/proxy-performance.md, scale row).
    new Gauge({
      name: 'nodejs_heap_space_size_total_bytes',
      help: 'Process heap space size total from Node.js in bytes.',
      labelNames: ['space'],
      registers,
      collect() {
        for (const s of getHeapSpaceStatistics()) this.set({ space: heapSpaceLabel(s.space_name) }, s.space_size);
      },
    });
    new Gauge({
      name: 'nodejs_heap_space_size_used_bytes',
      help: 'Process heap space size used from Node.js in bytes.',
      labelNames: ['space'],
      registers,
      collect() {
        for (const s of getHeapSpaceStatistics()) this.set({ space: heapSpaceLabel(s.space_name) }, s.space_used_size);
      },
    });
    new Gauge({ name: 'nodejs_external_memory_bytes', help: 'Node.js external memory size in bytes.', registers, collect() { this.set(getHeapStatistics().external_memory); } });
    new Counter({
      name: 'process_cpu_seconds_total',
      help: 'Total user and system CPU time spent in seconds.',
      registers,
      collect() {
        const u = cpuUsage();
        this.reset();
        this.inc((u.user + u.system) / 1e6);
      },
    });
  }

  /** Feeds every status report (from reconciler.onStatusChange): moves restart and pull counters. */
  observeStatus(report: ServiceStatusReport): void {
    const seen = new Set<string>();
    for (const r of report.replicas) {
      const key = `${report.serviceId}\0${r.index}`;
      seen.add(key);
      const lastRestarts = this.lastRestarts.get(key) ?? 0;
      if (r.restartCount > lastRestarts) this.restarts.inc({ service: report.slug, replica: String(r.index) }, r.restartCount - lastRestarts);
      this.lastRestarts.set(key, r.restartCount);
      if (r.phase === 'pulling' && r.pull !== undefined) {
        const before = this.lastPulled.get(key) ?? 0;
        if (r.pull.currentBytes > before) this.pullBytes.inc({ service: report.slug }, r.pull.currentBytes - before);
        this.lastPulled.set(key, r.pull.currentBytes);
      } else this.lastPulled.delete(key);
    }
    for (const key of [...this.lastPulled.keys()]) if (key.startsWith(`${report.serviceId}\0`) && !seen.has(key)) this.lastPulled.delete(key);
    if (report.state === 'stopped') {
      for (const key of [...this.lastRestarts.keys()]) if (key.startsWith(`${report.serviceId}\0`)) this.lastRestarts.delete(key);
    }
  }

  /** Feeds every tunnel state change (from tunnel.onState). */
  observeTunnelState(state: TunnelState): void {
    if (state.kind !== 'connected') return;
    if (this.everConnected) this.reconnects.inc();
    this.everConnected = true;
  }

  /** Image GC removed one reference (ImageGcObserver). */
  observeImageRemoved(_ref: string, bytes: number): void {
    this.gcImages.inc();
    this.gcBytes.inc(bytes);
  }

  observeRequest(serviceSlug: string, status: number, seconds: number): void {
    this.requests.observe(serviceSlug, status, seconds);
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** One service's proxied requests so far. */
interface ServiceRequests {
  /** Requests by response status. */
  codes: Map<number, number>;
  errors: number;
  /** Observations per latency bucket (not cumulative); the last one is above every bound. */
  buckets: number[];
  sum: number;
  count: number;
}

/** A sample as the registry formats it (prom-client's own metrics hand it the same). */
interface Sample {
  labels: Record<string, string | number>;
  value: number;
  /** The sample's name where it is not the family's (histogram `_bucket`, `_sum`, `_count`). */
  metricName?: string;
}

/**
 * `cyberun_proxy_requests_total`, `cyberun_proxy_errors_total` and
 * `cyberun_proxy_request_duration_seconds` kept as plain numbers per service and turned into
 * samples when the registry is scraped. observeRequest runs for every proxied request, and
 * prom-client's labelled `inc()` and `observe()` hash their label set on every call (about a
 * microsecond and 500 bytes a request on the agent); the exposition is prom-client's.
 */
class ProxyRequestFamilies {
  private readonly services = new Map<string, ServiceRequests>();

  constructor(registry: Registry) {
    const family = (name: string, help: string, type: 'counter' | 'histogram', values: () => Sample[]): void => {
      const get = async () => ({ name, help, type, aggregator: 'sum', values: values() });
      // A collector of its own: the registry reads name, help, type and get() (as for its own metrics).
      registry.registerMetric({ name, help, type, aggregator: 'sum', get, reset: () => undefined } as unknown as Metric);
    };
    family('cyberun_proxy_requests_total', 'Proxied requests by service and response status (0 = reset before a status).', 'counter', () =>
      this.each((service, s) => [...s.codes].map(([code, value]) => ({ labels: { service, code: String(code) }, value }))),
    );
    family('cyberun_proxy_errors_total', 'Proxied requests that ended in a 5xx or a reset.', 'counter', () =>
      this.each((service, s) => (s.errors === 0 ? [] : [{ labels: { service }, value: s.errors }])),
    );
    const name = 'cyberun_proxy_request_duration_seconds';
    family(name, 'Proxied request duration, open to end.', 'histogram', () =>
      this.each((service, s) => {
        let cumulative = 0;
        const bucket = (le: number | string, n: number) => ({ labels: { le, service }, value: (cumulative += n), metricName: `${name}_bucket` });
        return [
          ...LATENCY_BUCKETS.map((le, i) => bucket(le, s.buckets[i] ?? 0)),
          bucket('+Inf', s.buckets[LATENCY_BUCKETS.length] ?? 0),
          { labels: { service }, value: s.sum, metricName: `${name}_sum` },
          { labels: { service }, value: s.count, metricName: `${name}_count` },
        ];
      }),
    );
  }

  observe(slug: string, status: number, seconds: number): void {
    let s = this.services.get(slug);
    if (s === undefined) {
      s = { codes: new Map(), errors: 0, buckets: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
      this.services.set(slug, s);
    }
    s.codes.set(status, (s.codes.get(status) ?? 0) + 1);
    if (status === 0 || status >= 500) s.errors++;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > (LATENCY_BUCKETS[i] as number)) i++;
    s.buckets[i] = (s.buckets[i] ?? 0) + 1;
    s.sum += seconds;
    s.count++;
  }

  private each(samples: (service: string, s: ServiceRequests) => Sample[]): Sample[] {
    return [...this.services].flatMap(([service, s]) => samples(service, s));
  }
}

/** `new_space` → `new`, as prom-client's default collector labels V8's heap spaces. */
function heapSpaceLabel(spaceName: string): string {
  return spaceName.replace(/_space$/, '');
}
