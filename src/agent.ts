import type { AgentConfig } from './config/types.js';
import type { Logger } from './log.js';
import type { ContainerRuntime } from './runtime/container-runtime.js';
import { DockerRuntime } from './runtime/docker-runtime.js';
import type { HostInventory } from './host/types.js';
import { readInventory } from './host/inventory.js';
import { mergeLabels } from './host/labels.js';
import { placementVerdict } from './domain/placement.js';
import { Reconciler } from './reconcile/reconciler.js';
import { DesiredStore } from './reconcile/desired-store.js';
import { ServicesDirSource } from './reconcile/services-dir-source.js';
import { TunnelClient } from './tunnel/tunnel-client.js';
import { AGENT_VERSION } from './version.js';
import { readFile } from 'node:fs/promises';

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
 *   start: inventory → runtime (ping, network) → reconciler (disk snapshot, adopt) → sources, tunnel
 *   stop:  tunnel → sources → reconciler loop (containers keep running: agent shutdown ≠ workload shutdown)
 */
export class Agent {
  readonly reconciler: Reconciler;
  readonly runtime: ContainerRuntime;
  private inventory: HostInventory;
  private readonly servicesDir: ServicesDirSource | undefined;
  /** The tunnel to the gateway, when a gateway URL is configured. */
  tunnel: TunnelClient | undefined;
  private inventoryTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly deps: AgentDeps,
    inventory: HostInventory,
    runtime: ContainerRuntime,
  ) {
    const { config, logger } = deps;
    this.inventory = inventory;
    this.runtime = runtime;
    const now = deps.now ?? Date.now;
    this.reconciler = new Reconciler({
      agentId: config.agentId,
      runtime,
      logger,
      network: config.docker.network,
      allowedRoots: () => config.volumes.allowedRoots,
      placement: (spec) => placementVerdict(spec, this.labels(), this.inventory.gpus),
      policy: {
        startBudgetMs: config.health.startBudgetMs,
        failureThreshold: config.health.failureThreshold,
        restart: config.restart,
      },
      pull: config.pull,
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
  }

  static async start(deps: AgentDeps): Promise<Agent> {
    const { config, logger } = deps;
    const read = deps.readInventory ?? (() => readInventory({ detect: config.gpu.detect, timeoutMs: 15_000 }));
    const inventory = await read();
    logger.info({ gpus: inventory.gpus.length, gpuSource: inventory.gpuSource, labels: mergeLabels(inventory.hardwareLabels, config.agentLabels) }, 'host inventory');
    const runtime =
      deps.runtime ??
      new DockerRuntime({
        socketPath: config.docker.socketPath,
        host: config.docker.host,
        apiTimeoutMs: config.docker.apiTimeoutMs,
        addressing: config.docker.addressing,
        logger: logger.child({ component: 'docker' }),
      });
    const agent = new Agent(deps, inventory, runtime);
    await agent.reconciler.start();
    await agent.servicesDir?.start();
    if (config.gatewayUrl && config.agentKey) {
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
      });
      agent.tunnel.start();
    }
    agent.inventoryTimer = setInterval(() => void agent.refreshInventory(read), config.gpu.inventoryRefreshMs);
    agent.inventoryTimer.unref?.();
    return agent;
  }

  /** Agent labels: configured plus hardware-derived. */
  labels(): string[] {
    return mergeLabels(this.inventory.hardwareLabels, this.deps.config.agentLabels);
  }

  hostInventory(): HostInventory {
    return this.inventory;
  }

  /** Stops the agent's loops. Containers are never stopped here. Idempotent. */
  async stop(): Promise<void> {
    clearInterval(this.inventoryTimer);
    await this.tunnel?.close();
    this.servicesDir?.stop();
    await this.reconciler.stop();
  }

  private async refreshInventory(read: () => Promise<HostInventory>): Promise<void> {
    try {
      const next = await read();
      const lost = this.inventory.gpus.filter((g) => !next.gpus.some((n) => n.id === g.id));
      if (lost.length > 0) this.deps.logger.error({ gpus: lost.map((g) => g.id) }, 'GPUs disappeared from the inventory');
      this.inventory = next;
    } catch (err) {
      this.deps.logger.warn({ err }, 'inventory refresh failed; keeping the last one');
    }
  }
}
