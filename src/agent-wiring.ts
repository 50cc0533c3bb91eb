/**
 * How the agent's parts are built from the configuration and re-wired on a reload: the proxy
 * endpoint the tunnel is handed, the Docker adapter, and a reloaded configuration applied to the
 * running parts. agent.ts (the composition root) owns their order and lifetime.
 */
import type { AgentConfig } from './config/types.js';
import type { Logger } from './log.js';
import type { ContainerRuntime } from './runtime/container-runtime.js';
import type { Reconciler } from './reconcile/reconciler.js';
import type { TunnelClient } from './tunnel/tunnel-client.js';
import type { AgentCore } from './agent-core.js';
import { AgentProxy, type ProxyLimits, type RequestObserver } from './proxy/agent-proxy.js';
import { AgentStreams } from './proxy/agent-streams.js';
import { CredentialCache } from './proxy/credential-cache.js';
import { externalDispatcher, replicaDispatcher, type Resolve } from './proxy/upstream-dispatchers.js';
import { diffConfig, type ConfigChange } from './config/config-diff.js';
import type { PlanPolicy } from './domain/replica-planner.js';

export interface ProxyEndpointOptions {
  core: Pick<AgentCore, 'readyEndpoints' | 'desiredService' | 'replicaLogs'>;
  limits: ProxyLimits;
  logger: Logger;
  metrics?: RequestObserver;
  /** Extra CA (PEM) trusted for external upstreams, besides the system CAs. */
  upstreamCaPem?: string;
  /** DNS for external hosts; default the system resolver (tests inject one). */
  resolve?: Resolve;
  /** How long the tunnel's close() waits for open streams; default 10 s. */
  drainTimeoutMs?: number;
}

/**
 * The agent's side of proxied traffic, assembled: the undici pools for replicas and external
 * upstreams, the credential cache (which asks the gateway over the same tunnel), the proxy, and the
 * StreamEndpoint the tunnel client is handed.
 */
export function buildProxyEndpoint(options: ProxyEndpointOptions): AgentStreams {
  const { limits } = options;
  const dispatchers = {
    replica: replicaDispatcher(limits),
    external: externalDispatcher({
      ...limits,
      allowPrivate: limits.allowPrivateUpstreams,
      ...(options.resolve === undefined ? {} : { resolve: options.resolve }),
      ...(options.upstreamCaPem === undefined ? {} : { caPem: options.upstreamCaPem }),
    }),
  };
  // The cache asks through the endpoint, which exists by the time the first request is served.
  const credentials = new CredentialCache({ fetch: (serviceId, credentialId) => streams.requestCredential(serviceId, credentialId) });
  const proxy = new AgentProxy({
    core: options.core,
    credentials,
    dispatchers,
    limits,
    logger: options.logger,
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
  });
  const streams = new AgentStreams({ handler: proxy, logger: options.logger, ...(options.drainTimeoutMs === undefined ? {} : { drainTimeoutMs: options.drainTimeoutMs }) });
  return streams;
}

/**
 * The Docker adapter, imported here rather than at the top: dockerode loads ~8 MB of modules
 * (docker-modem with ssh2, BuildKit's gRPC stack, tar-fs) at import, and loaded after the rest of
 * the program they leave the idle heap ~4 MB smaller than loaded first (docs/runtime-footprint.md).
 */
export async function dockerRuntime(config: AgentConfig, logger: Logger): Promise<ContainerRuntime> {
  const [{ DockerRuntime }, { loadEngineTls }] = await Promise.all([import('./runtime/docker-runtime.js'), import('./runtime/engine-connection.js')]);
  return new DockerRuntime({
    socketPath: config.docker.socketPath,
    host: config.docker.host,
    tls: await loadEngineTls(config.docker.tls),
    apiTimeoutMs: config.docker.apiTimeoutMs,
    addressing: config.docker.addressing,
    logger: logger.child({ component: 'docker' }),
  });
}

/**
 * Applies a reloaded configuration (SIGHUP) to the running parts without restarting anything. Only
 * the keys in LIVE_CONFIG_KEYS change; the result names them and the changed keys that need a
 * restart (left as they were). Mutates `config` in place, since components hold references to its
 * sections.
 */
export function applyReload(
  config: AgentConfig,
  next: AgentConfig,
  parts: { logger: Logger; policy: PlanPolicy; tunnel: Pick<TunnelClient, 'refreshHello'> | undefined; reconciler: Pick<Reconciler, 'recheck'> },
): ConfigChange {
  const change = diffConfig(config, next);
  const live = new Set(change.live);
  if (live.has('agent_labels')) {
    config.agentLabels = [...next.agentLabels];
    parts.tunnel?.refreshHello('agent_labels changed');
  }
  if (live.has('log_level')) {
    config.logLevel = next.logLevel;
    parts.logger.level = next.logLevel;
  }
  if (live.has('volumes.allowed_roots')) config.volumes.allowedRoots = [...next.volumes.allowedRoots];
  if (live.has('health.start_budget')) parts.policy.startBudgetMs = config.health.startBudgetMs = next.health.startBudgetMs;
  if (change.live.some((k) => k.startsWith('restart.'))) Object.assign(config.restart, next.restart);
  if (change.live.some((k) => k.startsWith('pull.'))) Object.assign(config.pull, next.pull);
  if (live.has('shutdown.drain_timeout')) config.shutdown.drainTimeoutMs = next.shutdown.drainTimeoutMs;
  if (change.live.some((k) => k.startsWith('image_gc.'))) Object.assign(config.imageGc, { ...next.imageGc, intervalMs: config.imageGc.intervalMs });
  // Labels, roots or policies changed: judge every service again now rather than at its next event.
  if (change.live.length > 0) parts.reconciler.recheck();
  return change;
}
