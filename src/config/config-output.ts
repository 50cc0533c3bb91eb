/**
 * The merged file-shaped values as AgentConfig, and back: the masked config in the file's shape
 * that `config check` prints and a reader can load again.
 */
import type { AgentConfig } from './types.js';
import type { ConfigValues } from './config-schema.js';
import { formatDuration, formatSize } from './config-units.js';

// ---------------------------------------------------------------------------------------------
// Output

export function toAgentConfig(c: ConfigValues, agentKey: string | undefined): AgentConfig {
  return {
    gatewayUrl: c.gateway_url,
    agentId: c.agent_id,
    agentKey,
    agentKeyFile: c.agent_key_file,
    gatewayCaFile: c.gateway_ca_file,
    agentLabels: c.agent_labels,
    stateDir: c.state_dir,
    servicesDir: c.services_dir,
    docker: {
      socketPath: c.docker.socket,
      host: c.docker.host,
      network: c.docker.network,
      addressing: c.docker.addressing,
      apiTimeoutMs: c.docker.api_timeout,
      tls: { caFile: c.docker.tls?.ca_file, certFile: c.docker.tls?.cert_file, keyFile: c.docker.tls?.key_file },
    },
    volumes: { allowedRoots: c.volumes.allowed_roots },
    gpu: { detect: c.gpu.detect, deviceStyle: c.gpu.device_style, inventoryRefreshMs: c.gpu.inventory_refresh, driverCapabilities: c.gpu.driver_capabilities },
    health: {
      intervalMs: c.health.interval,
      timeoutMs: c.health.timeout,
      startBudgetMs: c.health.start_budget,
      failureThreshold: c.health.failure_threshold,
    },
    restart: {
      backoffBaseMs: c.restart.backoff_base,
      backoffCapMs: c.restart.backoff_cap,
      stableAfterMs: c.restart.stable_after,
      crashLoopLimit: c.restart.crash_loop_limit,
      failedRetryMs: c.restart.failed_retry,
      stopTimeoutMs: c.restart.stop_timeout,
    },
    pull: {
      stallTimeoutMs: c.pull.stall_timeout,
      totalTimeoutMs: c.pull.total_timeout,
      backoffBaseMs: c.pull.backoff_base,
      backoffCapMs: c.pull.backoff_cap,
      policy: c.pull.policy,
      allowedRegistries: c.pull.allowed_registries,
    },
    containers: {
      capDrop: c.containers.cap_drop,
      pidsLimit: c.containers.pids_limit,
      shmSizeBytes: c.containers.shm_size,
      memoryLimitBytes: c.containers.memory_limit,
      runtime: c.containers.runtime,
      gpu: { shmSizeBytes: c.containers.gpu.shm_size, memlockBytes: c.containers.gpu.memlock, stackBytes: c.containers.gpu.stack },
    },
    reconcile: { resyncIntervalMs: c.reconcile.resync_interval, orphanGraceMs: c.reconcile.orphan_grace },
    proxy: {
      maxBodyBytes: c.proxy.max_body,
      headersTimeoutMs: c.proxy.headers_timeout,
      idleTimeoutMs: c.proxy.idle_timeout,
      allowPrivateUpstreams: c.proxy.allow_private_upstreams,
      upstreamCaFile: c.proxy.upstream_ca_file,
    },
    admin: { listen: c.admin?.listen },
    shutdown: { drainTimeoutMs: c.shutdown.drain_timeout },
    logLevel: c.log_level,
    imageGc: { enabled: c.image_gc.enabled, highPercent: c.image_gc.high_percent, lowPercent: c.image_gc.low_percent, minAgeMs: c.image_gc.min_age, intervalMs: c.image_gc.interval },
  };
}

/** "ak-…(set, 40 chars)": says a key is set, and nothing of its value but the standard prefix. */
export function maskSecret(value: string | undefined): string | null {
  if (value === undefined) return null;
  return `${value.startsWith('ak-') ? 'ak-' : ''}…(set, ${value.length} chars)`;
}

/**
 * The config in the file's shape (snake_case, durations as "5s", sizes as "10GiB", unset = null),
 * safe to log or print: the agent key is masked. Read back as a file, it yields the same config.
 */
export function maskedConfig(config: AgentConfig): Record<string, unknown> {
  const d = formatDuration;
  return {
    gateway_url: config.gatewayUrl ?? null,
    agent_id: config.agentId,
    agent_key: maskSecret(config.agentKey),
    agent_key_file: config.agentKeyFile ?? null,
    gateway_ca_file: config.gatewayCaFile ?? null,
    agent_labels: [...config.agentLabels],
    state_dir: config.stateDir,
    services_dir: config.servicesDir ?? null,
    docker: {
      socket: config.docker.socketPath,
      host: config.docker.host ?? null,
      network: config.docker.network,
      addressing: config.docker.addressing,
      api_timeout: d(config.docker.apiTimeoutMs),
      tls: { ca_file: config.docker.tls.caFile ?? null, cert_file: config.docker.tls.certFile ?? null, key_file: config.docker.tls.keyFile ?? null },
    },
    volumes: { allowed_roots: [...config.volumes.allowedRoots] },
    gpu: {
      detect: config.gpu.detect,
      device_style: config.gpu.deviceStyle,
      inventory_refresh: d(config.gpu.inventoryRefreshMs),
      driver_capabilities: [...config.gpu.driverCapabilities],
    },
    health: {
      interval: d(config.health.intervalMs),
      timeout: d(config.health.timeoutMs),
      start_budget: d(config.health.startBudgetMs),
      failure_threshold: config.health.failureThreshold,
    },
    restart: {
      backoff_base: d(config.restart.backoffBaseMs),
      backoff_cap: d(config.restart.backoffCapMs),
      stable_after: d(config.restart.stableAfterMs),
      crash_loop_limit: config.restart.crashLoopLimit,
      failed_retry: d(config.restart.failedRetryMs),
      stop_timeout: d(config.restart.stopTimeoutMs),
    },
    pull: {
      stall_timeout: d(config.pull.stallTimeoutMs),
      total_timeout: d(config.pull.totalTimeoutMs),
      backoff_base: d(config.pull.backoffBaseMs),
      backoff_cap: d(config.pull.backoffCapMs),
      policy: config.pull.policy,
      allowed_registries: [...config.pull.allowedRegistries],
    },
    containers: {
      cap_drop: [...config.containers.capDrop],
      pids_limit: config.containers.pidsLimit,
      shm_size: formatSize(config.containers.shmSizeBytes),
      memory_limit: formatSize(config.containers.memoryLimitBytes),
      runtime: config.containers.runtime ?? null,
      gpu: {
        shm_size: formatSize(config.containers.gpu.shmSizeBytes),
        memlock: config.containers.gpu.memlockBytes === -1 ? 'unlimited' : formatSize(config.containers.gpu.memlockBytes),
        stack: config.containers.gpu.stackBytes === -1 ? 'unlimited' : formatSize(config.containers.gpu.stackBytes),
      },
    },
    reconcile: { resync_interval: d(config.reconcile.resyncIntervalMs), orphan_grace: d(config.reconcile.orphanGraceMs) },
    proxy: {
      max_body: formatSize(config.proxy.maxBodyBytes),
      headers_timeout: d(config.proxy.headersTimeoutMs),
      idle_timeout: d(config.proxy.idleTimeoutMs),
      allow_private_upstreams: config.proxy.allowPrivateUpstreams,
      upstream_ca_file: config.proxy.upstreamCaFile ?? null,
    },
    admin: { listen: config.admin.listen ?? null },
    shutdown: { drain_timeout: d(config.shutdown.drainTimeoutMs) },
    log_level: config.logLevel,
    image_gc: { enabled: config.imageGc.enabled, high_percent: config.imageGc.highPercent, low_percent: config.imageGc.lowPercent, min_age: d(config.imageGc.minAgeMs), interval: d(config.imageGc.intervalMs) },
  };
}
