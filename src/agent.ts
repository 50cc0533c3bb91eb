import type { AgentConfig } from './config/types.js';
import type { Logger } from './log.js';
import { CredentialsWatch, dockerConfigFile } from './runtime/credentials-watch.js';
import type { ContainerRuntime } from './runtime/container-runtime.js';
import type { HostInventory } from './host/types.js';
import { readInventory } from './host/inventory.js';
import { mergeLabels } from './host/labels.js';
import { gpuInventoryUpdate } from './host/gpu-health.js';
import { Reconciler } from './reconcile/reconciler.js';
import { DesiredStore } from './reconcile/desired-store.js';
import { ServicesDirSource } from './reconcile/services-dir-source.js';
import { refusedPathsFor } from './reconcile/host-rejection.js';
import { TunnelClient } from './tunnel/tunnel-client.js';
import { AGENT_VERSION } from './version.js';
import { readFile } from 'node:fs/promises';
import { AgentMetrics, type ProxyMetrics } from './admin/metrics.js';
import { startAdminServer, type AdminServer } from './admin/admin-server.js';
import { parseAdminListen } from './config/admin-listen.js';
import { buildStatusView, type AdminStatus } from './admin/status-view.js';
import { DrainRegistry } from './drain-registry.js';
import type { ConfigChange } from './config/config-diff.js';
import { applyReload, buildProxyEndpoint, dockerRuntime } from './agent-wiring.js';
import type { PlanPolicy } from './domain/replica-planner.js';
import { PulledImages } from './reconcile/pulled-images.js';
import { ImageCollector } from './reconcile/image-gc.js';
import { ErrorCodes, isAgentError } from './errors.js';

export interface AgentDeps {
  config: AgentConfig;
  logger: Logger;
  /** Defaults to DockerRuntime from the config. */
  runtime?: ContainerRuntime;
  /** Defaults to readInventory (systeminformation + nvidia-smi). */
  readInventory?: () => Promise<HostInventory>;
  now?: () => number;
  random?: () => number;
}

/**
 * The composition root: builds every component, passes dependencies in, and owns start/stop order.
 *
 *   start: inventory → admin endpoint → runtime (ping, network) → reconciler (disk snapshot, adopt) → sources, tunnel
 *   stop:  drain (proxy streams) → tunnel → sources → reconciler loop → admin endpoint
 *          (containers keep running: agent shutdown ≠ workload shutdown)
 */
export class Agent {
  readonly reconciler: Reconciler;
  readonly runtime: ContainerRuntime;
  private inventory: HostInventory;
  private readonly servicesDir: ServicesDirSource | undefined;
  /** The tunnel to the gateway, when a gateway URL is configured. */
  tunnel: TunnelClient | undefined;
  private inventoryTimer: NodeJS.Timeout | undefined;
  /** A change of the host's registry credentials retries failed pulls at once. */
  private readonly credentialsWatch = new CredentialsWatch(dockerConfigFile(), () => this.reconciler.retryPulls('the registry credentials file changed'));
  /** Prometheus metrics; also the ProxyMetrics the proxy reports requests to (see `proxyMetrics`). */
  readonly metrics: AgentMetrics;
  /** Graceful-shutdown participants (the proxy registers here); drained first by `stop()`. */
  readonly drains: DrainRegistry;
  private admin: AdminServer | undefined;
  /** Set when start() has finished; the admin endpoint's /healthz reports it. */
  private started = false;
  private readonly startedAt: number;
  /** Shared with the reconciler by reference, so a reload can change the start budget live. */
  private readonly policy: PlanPolicy;
  /** The images the agent pulled (state_dir/pulled-images.json), and the collector that removes them. */
  private readonly pulledImages: PulledImages;
  readonly imageGc: ImageCollector;

  private constructor(
    private readonly deps: AgentDeps,
    inventory: HostInventory,
    runtime: ContainerRuntime,
    /** Host paths never mounted (the static list, this agent's state dir and engine socket). */
    refusedPaths: readonly string[],
  ) {
    const { config, logger } = deps;
    this.inventory = inventory;
    this.runtime = runtime;
    const now = deps.now ?? Date.now;
    this.startedAt = now();
    this.policy = {
      pullBackoffBaseMs: config.pull.backoffBaseMs,
      pullBackoffCapMs: config.pull.backoffCapMs,
      startBudgetMs: config.health.startBudgetMs,
      failureThreshold: config.health.failureThreshold,
      restart: config.restart,
    };
    this.pulledImages = new PulledImages(config.stateDir, (err) => logger.warn({ err }, 'could not save the record of pulled images; retrying with the next change'));
    this.reconciler = new Reconciler({
      images: {
        pulled: (ref) => this.pulledImages.recordPull(ref, now()),
        pullFailed: (ref, err) => {
          if (isAgentError(err, ErrorCodes.IMAGE_PULL_NO_SPACE)) this.imageGc.trigger(`pull of ${ref} failed: the engine's disk is full`);
        },
      },
      agentId: config.agentId,
      runtime,
      logger,
      network: config.docker.network,
      host: () => ({
        labels: this.labels(),
        gpus: this.inventory.gpus,
        allowedRoots: this.deps.config.volumes.allowedRoots,
        refusedPaths,
        allowedRegistries: this.deps.config.pull.allowedRegistries,
      }),
      policy: this.policy,
      pull: config.pull,
      containers: config.containers,
      driverCapabilities: config.gpu.driverCapabilities,
      stopTimeoutMs: config.restart.stopTimeoutMs,
      orphanGraceMs: config.reconcile.orphanGraceMs,
      gpuDeviceStyle: config.gpu.deviceStyle,
      now,
      random: deps.random ?? Math.random,
      store: new DesiredStore(config.stateDir),
      gpuDevices: () => this.inventory.gpus,
      health: config.health,
      resyncIntervalMs: config.reconcile.resyncIntervalMs,
    });
    this.servicesDir = config.servicesDir
      ? new ServicesDirSource({ dir: config.servicesDir, core: this.reconciler, logger: logger.child({ component: 'services-dir' }) })
      : undefined;
    this.drains = new DrainRegistry(logger.child({ component: 'drain' }));
    this.metrics = new AgentMetrics({
      agentId: config.agentId,
      version: AGENT_VERSION,
      statusSnapshot: () => this.reconciler.statusSnapshot(),
      gpus: () => this.inventory.gpus,
      gpuClaims: () => this.reconciler.gpuClaims(),
      tunnelState: () => this.tunnel?.currentState(),
      disk: () => this.imageGc.diskStatus(),
    });
    this.reconciler.onStatusChange((report) => this.metrics.observeStatus(report));
    this.imageGc = new ImageCollector({
      engine: runtime,
      store: this.pulledImages,
      settings: () => this.deps.config.imageGc,
      desiredImages: () => this.reconciler.desiredImages(),
      logger,
      now,
      observer: this.metrics,
    });
  }

  static async start(deps: AgentDeps): Promise<Agent> {
    const { config, logger } = deps;
    const read = deps.readInventory ?? (() => readInventory({ detect: config.gpu.detect, timeoutMs: 15_000 }));
    const inventory = await read();
    logger.info({ gpus: inventory.gpus.length, gpuSource: inventory.gpuSource, labels: mergeLabels(inventory.hardwareLabels, config.agentLabels) }, 'host inventory');
    const runtime = deps.runtime ?? (await dockerRuntime(config, logger));
    const engineSocket = config.docker.host === undefined || config.docker.host === '' ? config.docker.socketPath : config.docker.host.startsWith('unix://') ? config.docker.host.slice('unix://'.length) : undefined;
    const agent = new Agent(deps, inventory, runtime, await refusedPathsFor(config.stateDir, engineSocket));
    // First, so a second agent on the same state dir is refused before it touches anything.
    await agent.startAdmin();
    // Before any pull can be recorded: image GC must know what earlier runs pulled.
    await agent.pulledImages.load().catch((err: unknown) => logger.error({ err }, 'ignoring the unreadable record of pulled images: image GC removes none of them'));
    try {
      await agent.reconciler.start();
    } catch (err) {
      await agent.admin?.close();
      throw err;
    }
    await agent.servicesDir?.start();
    if (config.gatewayUrl && config.agentKey) {
      const streams = buildProxyEndpoint({
        core: agent.reconciler,
        limits: config.proxy,
        logger: logger.child({ component: 'proxy' }),
        metrics: agent.metrics,
        ...(config.proxy.upstreamCaFile ? { upstreamCaPem: await readFile(config.proxy.upstreamCaFile, 'utf8') } : {}),
      });
      agent.drains.register('proxy', (deadline) => streams.drain(deadline));
      agent.tunnel = new TunnelClient({
        url: config.gatewayUrl,
        agentKey: config.agentKey,
        ...(config.gatewayCaFile ? { caPem: await readFile(config.gatewayCaFile, 'utf8') } : {}),
        agentId: config.agentId,
        agentVersion: AGENT_VERSION,
        labels: () => agent.labels(),
        inventory: () => agent.inventory,
        core: agent.reconciler,
        logger: logger.child({ component: 'tunnel' }),
        streams,
      });
      agent.tunnel.onState((state) => agent.metrics.observeTunnelState(state));
      agent.tunnel.start();
    }
    agent.imageGc.start();
    await agent.credentialsWatch.start();
    agent.inventoryTimer = setInterval(() => void agent.refreshInventory(read), config.gpu.inventoryRefreshMs);
    agent.inventoryTimer.unref?.();
    agent.started = true;
    return agent;
  }

  /** Agent labels: configured plus hardware-derived. */
  labels(): string[] {
    return mergeLabels(this.inventory.hardwareLabels, this.deps.config.agentLabels);
  }

  hostInventory(): HostInventory {
    return this.inventory;
  }

  /** What the proxy reports each finished request to. */
  get proxyMetrics(): ProxyMetrics {
    return this.metrics;
  }

  /** The admin endpoint's `GET /status` document. */
  statusView(): AdminStatus {
    return buildStatusView({
      agentId: this.deps.config.agentId,
      version: AGENT_VERSION,
      now: (this.deps.now ?? Date.now)(),
      startedAt: this.startedAt,
      desiredRevision: this.reconciler.desiredRevision,
      tunnel: this.tunnel?.currentState(),
      labels: this.labels(),
      gpus: this.inventory.gpus,
      claims: this.reconciler.gpuClaims(),
      services: this.reconciler.statusSnapshot(),
      disk: this.imageGc.diskStatus(),
    });
  }

  /**
   * Stops the agent: drains registered participants (proxy streams) within
   * `shutdown.drainTimeoutMs`, then closes the tunnel and stops the loops. Containers are never
   * stopped here. Idempotent.
   */
  async stop(): Promise<void> {
    clearInterval(this.inventoryTimer);
    this.credentialsWatch.stop();
    await this.drains.drain(this.deps.config.shutdown.drainTimeoutMs);
    await this.tunnel?.close();
    this.servicesDir?.stop();
    await this.imageGc.stop();
    await this.reconciler.stop();
    await this.pulledImages.flush();
    await this.admin?.close();
  }

  /**
   * Applies a reloaded configuration (SIGHUP) to the running agent without restarting anything.
   * Only the keys in LIVE_CONFIG_KEYS change; the result names them and the changed keys that
   * need a restart (left as they were). Mutates the config object in place, since components hold
   * references to its sections.
   */
  reload(next: AgentConfig): ConfigChange {
    return applyReload(this.deps.config, next, { logger: this.deps.logger, policy: this.policy, tunnel: this.tunnel, reconciler: this.reconciler });
  }

  private async startAdmin(): Promise<void> {
    const address = parseAdminListen(this.deps.config.admin.listen, this.deps.config.stateDir);
    if (address.kind === 'off') return;
    this.admin = await startAdminServer({
      address,
      status: () => this.statusView(),
      ready: () => this.started,
      metrics: async () => ({ contentType: this.metrics.contentType, text: await this.metrics.text() }),
      retry: (slug) => this.reconciler.retry(slug),
      logs: (slug, query, signal) => {
        const id = this.reconciler.serviceIdBySlug(slug);
        return id === undefined ? undefined : this.reconciler.replicaLogs(id, query, signal);
      },
      logger: this.deps.logger.child({ component: 'admin' }),
    });
  }

  /** Where the admin endpoint listens (tcp port 0 resolved), or undefined when it is off. */
  adminAddress() {
    return this.admin?.address;
  }

  /**
   * Reads the inventory again (every `gpu.inventory_refresh`). GPUs nvidia-smi stopped listing are
   * kept as unhealthy (withMissingGpus). Health changes are logged per GPU; any change of GPUs,
   * health or labels is told to the gateway at once (a new hello: it places by them), and every
   * service is judged again (a replica waiting for healthy GPUs may start, one on a GPU that
   * failed gets its reason).
   */
  private async refreshInventory(read: () => Promise<HostInventory>): Promise<void> {
    try {
      const fresh = await read();
      const update = gpuInventoryUpdate(this.inventory, fresh);
      for (const gpu of update.turnedUnhealthy) this.deps.logger.error({ gpu: gpu.id, busId: gpu.busId, reason: gpu.unhealthy }, 'GPU is unhealthy: no new replica gets it');
      for (const gpu of update.recovered) this.deps.logger.info({ gpu: gpu.id, busId: gpu.busId }, 'GPU is healthy again: back in the pool');
      this.inventory = { ...fresh, gpus: update.gpus };
      // The gateway places by the hello's GPUs and labels: tell it at once, not at the next connection.
      if (update.placementChanged) this.tunnel?.refreshHello('the host inventory changed');
      if (update.healthChanged) this.reconciler.recheck();
    } catch (err) {
      this.deps.logger.warn({ err }, 'inventory refresh failed; keeping the last one');
    }
  }
}
