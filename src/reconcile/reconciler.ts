import type { GpuDevice } from '../domain/gpu-device.js';
import type { AgentCore } from '../agent-core.js';
import type { Logger } from '../log.js';
import type { DesiredService } from '../service-definition/types.js';
import { containerSpecHash } from '../service-definition/spec-hash.js';
import type { ObservedContainer } from '../domain/observed-container.js';
import { ownershipFilter, replicaIndexOf, serviceIdOf, specHashOf } from '../domain/ownership-labels.js';
import type { ReadyEndpoint, ReplicaStatus, ServiceStatusReport } from '../domain/status-types.js';
import { sameReport, serviceReport } from '../domain/service-report.js';
import { HttpProber } from '../health/http-prober.js';
import { MAX_REMOVED, type DesiredStore } from './desired-store.js';
import { GpuBook } from './gpu-book.js';
import { ServiceWorker } from './service-worker.js';
import type { WorkerContext, WorkerTarget } from './worker-context.js';
import { replicaLogs } from './replica-logs.js';
import type { ReplicaLogEntry, ServiceLogQuery } from '../domain/log-entry.js';

/** How long stop() waits for reconcile passes in progress. */
const STOP_WAIT_MS = 5_000;

export interface ReconcilerOptions extends Omit<WorkerContext, 'prober' | 'gpus' | 'publish' | 'desiredService'> {
  store: DesiredStore | undefined;
  gpuDevices: () => GpuDevice[];
  health: { intervalMs: number; timeoutMs: number; failureThreshold: number };
  resyncIntervalMs: number;
}

interface DesiredEntry {
  service: DesiredService;
  hash: string;
}

/**
 * The level-triggered reconcile loop and the agent core the tunnel talks to.
 *
 *   applyDesired ─┐
 *   docker events ├─▶ kick(service) ─▶ ServiceWorker pass: observe → plan → act ─▶ status
 *   probe changes ┤
 *   resync timer ─┘   (relists every container we own, so orphans and missed events are found)
 *
 * Nothing destructive happens to services that are not desired until the first full desired
 * snapshot arrived (from the gateway, the services dir, or the on-disk copy of the last one).
 * `stop()` stops the loop only: containers keep running and are adopted on the next start.
 */
export class Reconciler implements AgentCore {
  private readonly desired = new Map<string, DesiredEntry>();
  private readonly workers = new Map<string, ServiceWorker>();
  private readonly statuses = new Map<string, ServiceStatusReport>();
  private readonly listeners = new Set<(r: ServiceStatusReport) => void>();
  private readonly prober: HttpProber;
  private readonly gpus: GpuBook;
  private readonly ctx: WorkerContext;
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private snapshotSeen = false;
  /** Every service id desired at some point in this agent's life (explicit removals skip the orphan grace). */
  private readonly everDesired = new Set<string>();
  private resyncTimer: NodeJS.Timeout | undefined;
  private revision = -1;

  constructor(private readonly options: ReconcilerOptions) {
    this.log = options.logger.child({ component: 'reconciler' });
    this.prober = new HttpProber({
      ...options.health,
      logger: options.logger,
      onChange: (containerId) => this.kickByContainer(containerId),
    });
    this.gpus = new GpuBook(options.gpuDevices, () => this.kickAll());
    this.ctx = { ...options, prober: this.prober, gpus: this.gpus, publish: (id, replicas) => this.publish(id, replicas), desiredService: (id) => this.desiredService(id) };
  }

  /** Connects to the engine, restores the last desired set from disk, adopts what runs. */
  async start(): Promise<void> {
    const { runtime } = this.options;
    await runtime.ping();
    await runtime.ensureNetwork(this.options.network);
    // The GPU table must hold every existing container's GPUs before any worker may allocate.
    const existing = await runtime.listContainers(ownershipFilter(this.options.agentId));
    for (const [id, containers] of byService(existing)) this.gpus.observe(id, containers);
    const saved = await this.options.store?.load().catch((err: unknown) => {
      this.log.error({ err }, 'ignoring unreadable desired-state file');
      return undefined;
    });
    if (saved && !this.snapshotSeen) {
      this.log.info({ services: saved.services.length, revision: saved.revision }, 'restored desired state from disk');
      // Removed before the restart: their containers are no orphans of unknown origin, they go at once.
      for (const id of saved.removed ?? []) this.everDesired.add(id);
      this.applyDesired(saved.services, saved.revision, 'disk');
    }
    runtime.watchEvents(
      ownershipFilter(this.options.agentId),
      (e) => {
        const id = serviceIdOf(e);
        if (id) this.worker(id).kick();
      },
      this.abort.signal,
      (err) => this.log.warn({ err }, 'docker event stream lost; reconnecting'),
    );
    await this.resync();
    this.resyncTimer = setInterval(() => void this.resync(), this.options.resyncIntervalMs);
    this.resyncTimer.unref?.();
  }

  /**
   * Stops the loop: no new passes; waits up to STOP_WAIT_MS for passes in progress to finish
   * their action (a create or start completes rather than leaving a container half made; a long
   * pull is left to the engine). Containers are never stopped.
   */
  async stop(): Promise<void> {
    this.abort.abort();
    clearInterval(this.resyncTimer);
    const passes = Promise.all([...this.workers.values()].map((w) => w.close()));
    await Promise.race([passes, new Promise<void>((resolve) => setTimeout(resolve, STOP_WAIT_MS).unref())]);
    await this.prober.close();
  }

  applyDesired(services: DesiredService[], revision: number, source: string): void {
    const next = new Map(services.map((s) => [s.id, { service: s, hash: containerSpecHash(s.definition) }]));
    const touched = new Set([...this.desired.keys(), ...next.keys()]);
    for (const id of touched) {
      const a = this.desired.get(id);
      const b = next.get(id);
      // Deployed again: whatever failed is tried at once (the gateway's "deploy a failed service").
      if (a && b && b.service.deployedAt !== undefined && a.service.deployedAt !== b.service.deployedAt) this.workers.get(id)?.retryFailures();
      if (a && b && a.hash === b.hash && a.service.deployedAt === b.service.deployedAt && JSON.stringify(a.service.definition) === JSON.stringify(b.service.definition)) touched.delete(id);
    }
    this.desired.clear();
    for (const [id, e] of next) {
      this.desired.set(id, e);
      this.everDesired.add(id);
    }
    const first = !this.snapshotSeen;
    this.snapshotSeen = true;
    this.revision = revision;
    this.log.info({ source, revision, services: services.length, changed: touched.size }, 'desired state applied');
    if (source !== 'disk') {
      const removed = [...this.everDesired].filter((id) => !next.has(id)).slice(-MAX_REMOVED);
      this.options.store?.save({ revision, source, services, removed }).catch((err: unknown) => this.log.error({ err }, 'could not persist desired state'));
    }
    for (const id of touched) this.worker(id).kick();
    // The first snapshot also enables orphan removal for everything already observed.
    if (first) for (const w of this.workers.values()) w.kick();
  }

  statusSnapshot(): ServiceStatusReport[] {
    return [...this.statuses.values()];
  }

  onStatusChange(listener: (report: ServiceStatusReport) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Where traffic may go: running containers whose health check passes for their current start,
   * and, for containers of the current spec, only once the status reported them ready, so traffic
   * never leads what the status shows. Containers of an older spec (still serving while their
   * replacement starts in a rolling update) need only the passing check.
   */
  readyEndpoints(serviceId: string): ReadyEndpoint[] {
    const entry = this.desired.get(serviceId);
    const worker = this.workers.get(serviceId);
    if (!entry || !worker) return [];
    // Runs per proxied request: no intermediate collections or closures (a service has a handful of replicas).
    const replicas = this.statuses.get(serviceId)?.replicas;
    const out: ReadyEndpoint[] = [];
    for (const c of worker.containers) {
      const probe = this.prober.view(c.id);
      if (c.state !== 'running' || !probe?.ready || probe.startedAt !== c.startedAt) continue;
      if (specHashOf(c) === entry.hash && !reportedReady(replicas, c.id)) continue;
      const ep = this.options.runtime.replicaEndpoint(c, entry.service.definition.exposed_port);
      if (ep) out.push({ serviceId, replicaIndex: replicaIndexOf(c), containerId: c.id, host: ep.host, port: ep.port });
    }
    return out;
  }

  replicaLogs(serviceId: string, query: ServiceLogQuery, signal: AbortSignal): AsyncIterable<ReplicaLogEntry> | undefined {
    if (this.desiredService(serviceId) === undefined) return undefined;
    return replicaLogs(this.options.runtime, this.options.agentId, serviceId, query, signal);
  }

  desiredService(serviceId: string): DesiredService | undefined {
    return this.desired.get(serviceId)?.service;
  }

  /** The images desired deployed services name (image GC keeps them, running or not). */
  desiredImages(): string[] {
    return [...this.desired.values()].flatMap((e) => (e.service.definition.docker_image ? [e.service.definition.docker_image] : []));
  }

  /**
   * Tries the failed replicas of the service with `slug` again at once (`cyberun-agent retry`):
   * crash loops and failures before a container ran are forgotten; restart counts stay. Returns
   * false when no such service is desired here.
   */
  /** The id of the desired service with `slug`, if any. */
  serviceIdBySlug(slug: string): string | undefined {
    return [...this.desired.values()].find((e) => e.service.definition.service_slug === slug)?.service.id;
  }

  retry(slug: string): boolean {
    const entry = [...this.desired.values()].find((e) => e.service.definition.service_slug === slug);
    if (entry === undefined) return false;
    this.log.info({ service: slug }, 'retrying failed replicas on request');
    this.worker(entry.service.id).retryFailures();
    return true;
  }

  /**
   * Tries every failed pull again at once: the host's registry credentials changed (`docker login`),
   * so an "unauthorized" may be gone. Other failures keep their backoff.
   */
  retryPulls(why: string): void {
    this.log.info({ why }, 'retrying failed pulls');
    for (const worker of this.workers.values()) worker.retryPulls();
  }

  /** The GPU claims table, for `inventory` and the admin endpoint. */
  gpuClaims() {
    return this.gpus.claims();
  }

  /** Runs a pass of every service now, e.g. after a config reload changed labels or policies. */
  recheck(): void {
    this.kickAll();
  }

  get desiredRevision(): number {
    return this.revision;
  }

  /** Relists every container we own: finds orphans and anything events missed, then kicks all. */
  private async resync(): Promise<void> {
    try {
      const all = await this.options.runtime.listContainers(ownershipFilter(this.options.agentId));
      // Each worker observes its own containers; the relist only finds services without a worker.
      for (const id of new Set([...byService(all).keys(), ...this.desired.keys()])) this.worker(id).kick();
    } catch (err) {
      this.log.warn({ err }, 'resync failed; will retry');
    }
  }

  private worker(serviceId: string): ServiceWorker {
    let w = this.workers.get(serviceId);
    if (!w) {
      w = new ServiceWorker(serviceId, this.ctx, () => this.target(serviceId), (id, empty) => this.idle(id, empty));
      this.workers.set(serviceId, w);
    }
    return w;
  }

  private target(serviceId: string): WorkerTarget {
    const e = this.desired.get(serviceId);
    return { serviceId, definition: e?.service.definition, specHash: e?.hash, destructiveAllowed: this.snapshotSeen, removedExplicitly: !e && this.everDesired.has(serviceId) };
  }

  /** A worker of an undesired service with nothing left is done: drop it and its status. */
  private idle(serviceId: string, empty: boolean): void {
    if (!empty || this.desired.has(serviceId)) return;
    void this.workers.get(serviceId)?.close();
    this.workers.delete(serviceId);
    const last = this.statuses.get(serviceId);
    this.statuses.delete(serviceId);
    if (last && last.state !== 'stopped') this.emit({ ...last, state: 'stopped', replicas: [], readyReplicas: 0, reason: undefined, updatedAt: this.options.now() });
  }

  private publish(serviceId: string, replicas: ReplicaStatus[]): void {
    const entry = this.desired.get(serviceId);
    const prev = this.statuses.get(serviceId);
    const report = serviceReport(serviceId, entry === undefined ? undefined : { definition: entry.service.definition, specHash: entry.hash }, prev, replicas, this.options.now());
    if (prev && sameReport(prev, report)) return;
    this.statuses.set(serviceId, report);
    this.emit(report);
  }

  private emit(report: ServiceStatusReport): void {
    for (const l of this.listeners) {
      try {
        l(report);
      } catch (err) {
        this.log.error({ err }, 'status listener failed');
      }
    }
  }

  private kickByContainer(containerId: string): void {
    for (const w of this.workers.values()) {
      if (w.containers.some((c) => c.id === containerId)) w.kick();
    }
  }

  private kickAll(): void {
    for (const w of this.workers.values()) w.kick();
  }
}

/** Whether the status reports container `id` as a ready replica. */
function reportedReady(replicas: readonly ReplicaStatus[] | undefined, id: string): boolean {
  if (replicas === undefined) return false;
  for (const r of replicas) if (r.phase === 'ready' && r.containerId === id) return true;
  return false;
}

function byService(containers: readonly ObservedContainer[]): Map<string, ObservedContainer[]> {
  const out = new Map<string, ObservedContainer[]>();
  for (const c of containers) {
    const id = serviceIdOf(c);
    if (id) out.set(id, [...(out.get(id) ?? []), c]);
  }
  return out;
}
