import { Agent } from '../../src/agent.js';
import type { AgentConfig } from '../../src/config/types.js';
import type { HostInventory } from '../../src/host/types.js';
import { createLogger, type Logger } from '../../src/log.js';
import type { ServiceStatusReport } from '../../src/domain/status-types.js';
import { DOCKER_SOCKET, removeTestNetwork } from './docker.js';
import { sweepByLabel } from './engine.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import { testContainerDefaults } from './container-settings.js';

/** An AgentConfig with short timers, for tests against the real engine. */
export function testConfig(runId: string, stateDir: string, over: Partial<AgentConfig> = {}): AgentConfig {
  return {
    gatewayUrl: undefined,
    agentId: `test-${runId}`.slice(0, 60),
    agentKey: undefined,
    agentKeyFile: undefined,
    gatewayCaFile: undefined,
    agentLabels: [],
    stateDir,
    servicesDir: undefined,
    docker: { socketPath: DOCKER_SOCKET, host: undefined, tls: { caFile: undefined, certFile: undefined, keyFile: undefined }, network: `cyberun-${runId}`.slice(0, 60), addressing: 'ip', apiTimeoutMs: 30_000 },
    volumes: { allowedRoots: [] },
    gpu: { detect: 'none', deviceStyle: 'device-ids', inventoryRefreshMs: 60_000, driverCapabilities: ['compute', 'utility'] },
    health: { intervalMs: 250, timeoutMs: 1_000, startBudgetMs: 60_000, failureThreshold: 2 },
    restart: { backoffBaseMs: 300, backoffCapMs: 1_500, stableAfterMs: 60_000, crashLoopLimit: 3, failedRetryMs: 0, stopTimeoutMs: 2_000 },
    pull: { stallTimeoutMs: 10_000, totalTimeoutMs: 60_000, backoffBaseMs: 10_000, backoffCapMs: 300_000, policy: 'auto', allowedRegistries: [] },
    containers: testContainerDefaults,
    reconcile: { resyncIntervalMs: 2_000, orphanGraceMs: 60_000 },
    proxy: { maxBodyBytes: 1 << 30, headersTimeoutMs: 60_000, idleTimeoutMs: 60_000, allowPrivateUpstreams: true, upstreamCaFile: undefined },
    admin: { listen: undefined },
    shutdown: { drainTimeoutMs: 5_000 },
    logLevel: (process.env['TEST_LOG_LEVEL'] as AgentConfig['logLevel'] | undefined) ?? 'error',
    // Off in tests unless a test turns it on: the engine is shared, and no test may wait on a scan.
    imageGc: { enabled: false, highPercent: 85, lowPercent: 80, minAgeMs: 300_000, intervalMs: 60_000 },
    ...over,
  };
}

export const noGpuInventory: HostInventory = {
  gpus: [],
  cpu: { model: 'test', cores: 2 },
  memoryBytes: 1 << 30,
  platformArch: 'linux/amd64',
  hardwareLabels: [],
  gpuSource: 'none',
};

export { tempDir } from './temp-dirs.js';

export interface TestAgent {
  agent: Agent;
  config: AgentConfig;
  /** Every status report published, in order. */
  reports: ServiceStatusReport[];
  status(serviceId: string): ServiceStatusReport | undefined;
  stop(): Promise<void>;
}

/** `inventory` may be a function: each inventory read (start, every `gpu.inventory_refresh`) calls it. */
export async function startTestAgent(config: AgentConfig, inventory: HostInventory | (() => HostInventory) = noGpuInventory, logger?: Logger): Promise<TestAgent> {
  const readInventory = async (): Promise<HostInventory> => (typeof inventory === 'function' ? inventory() : inventory);
  const agent = await Agent.start({ config, logger: logger ?? createLogger({ level: config.logLevel }), readInventory });
  const reports: ServiceStatusReport[] = [];
  agent.reconciler.onStatusChange((r) => reports.push(r));
  return {
    agent,
    config,
    reports,
    status: (id) => agent.reconciler.statusSnapshot().find((r) => r.serviceId === id),
    stop: () => agent.stop(),
  };
}

/**
 * The end of a test file that ran an agent (and a gateway): stop both, then remove every container
 * of the agent and its network. Safe when setup failed halfway (either may be undefined).
 */
export async function tearDown(t: TestAgent | undefined, gateway?: { close(): Promise<void> } | undefined): Promise<void> {
  await t?.stop();
  await gateway?.close();
  await sweepByLabel(`${Labels.AGENT_ID}=${t?.config.agentId}`);
  await removeTestNetwork(t?.config.docker.network ?? '');
}
