/** Every key of cyberun-agent.yaml with its kind and flag, and the env var name of each. */

type KeyKind = 'url' | 'string' | 'path' | 'list' | 'enum' | 'duration' | 'size' | 'int' | 'bool';

interface ConfigKey {
  /** Dotted key path in the file, e.g. "health.start_budget". */
  path: string;
  kind: KeyKind;
  /** A dedicated flag besides `--set <path>=…`, if any. */
  flag?: string;
}

/** Every key of the file, in file order. Tests hold it equal to the schema and to AgentConfig. */
export const CONFIG_KEYS: readonly ConfigKey[] = [
  { path: 'gateway_url', kind: 'url', flag: '--gateway-url' },
  { path: 'agent_id', kind: 'string', flag: '--agent-id' },
  { path: 'agent_key_file', kind: 'path', flag: '--agent-key-file' },
  { path: 'gateway_ca_file', kind: 'path' },
  { path: 'agent_labels', kind: 'list', flag: '--label' },
  { path: 'state_dir', kind: 'path', flag: '--state-dir' },
  { path: 'services_dir', kind: 'path', flag: '--services-dir' },
  { path: 'docker.socket', kind: 'path', flag: '--docker-socket' },
  { path: 'docker.host', kind: 'url', flag: '--docker-host' },
  { path: 'docker.network', kind: 'string' },
  { path: 'docker.addressing', kind: 'enum' },
  { path: 'docker.api_timeout', kind: 'duration' },
  { path: 'docker.tls.ca_file', kind: 'path' },
  { path: 'docker.tls.cert_file', kind: 'path' },
  { path: 'docker.tls.key_file', kind: 'path' },
  { path: 'volumes.allowed_roots', kind: 'list' },
  { path: 'gpu.detect', kind: 'enum' },
  { path: 'gpu.device_style', kind: 'enum' },
  { path: 'gpu.inventory_refresh', kind: 'duration' },
  { path: 'gpu.driver_capabilities', kind: 'list' },
  { path: 'health.interval', kind: 'duration' },
  { path: 'health.timeout', kind: 'duration' },
  { path: 'health.start_budget', kind: 'duration' },
  { path: 'health.failure_threshold', kind: 'int' },
  { path: 'restart.backoff_base', kind: 'duration' },
  { path: 'restart.backoff_cap', kind: 'duration' },
  { path: 'restart.stable_after', kind: 'duration' },
  { path: 'restart.crash_loop_limit', kind: 'int' },
  { path: 'restart.failed_retry', kind: 'duration' },
  { path: 'restart.stop_timeout', kind: 'duration' },
  { path: 'pull.stall_timeout', kind: 'duration' },
  { path: 'pull.total_timeout', kind: 'duration' },
  { path: 'pull.backoff_base', kind: 'duration' },
  { path: 'pull.backoff_cap', kind: 'duration' },
  { path: 'pull.policy', kind: 'enum' },
  { path: 'pull.allowed_registries', kind: 'list' },
  { path: 'containers.cap_drop', kind: 'list' },
  { path: 'containers.pids_limit', kind: 'int' },
  { path: 'containers.shm_size', kind: 'size' },
  { path: 'containers.memory_limit', kind: 'size' },
  { path: 'containers.runtime', kind: 'string' },
  { path: 'containers.gpu.shm_size', kind: 'size' },
  { path: 'containers.gpu.memlock', kind: 'size' },
  { path: 'containers.gpu.stack', kind: 'size' },
  { path: 'reconcile.resync_interval', kind: 'duration' },
  { path: 'reconcile.orphan_grace', kind: 'duration' },
  { path: 'proxy.max_body', kind: 'size' },
  { path: 'proxy.headers_timeout', kind: 'duration' },
  { path: 'proxy.idle_timeout', kind: 'duration' },
  { path: 'proxy.allow_private_upstreams', kind: 'bool' },
  { path: 'proxy.upstream_ca_file', kind: 'path' },
  { path: 'admin.listen', kind: 'string' },
  { path: 'shutdown.drain_timeout', kind: 'duration' },
  { path: 'log_level', kind: 'enum', flag: '--log-level' },
  { path: 'image_gc.enabled', kind: 'bool' },
  { path: 'image_gc.high_percent', kind: 'int' },
  { path: 'image_gc.low_percent', kind: 'int' },
  { path: 'image_gc.min_age', kind: 'duration' },
  { path: 'image_gc.interval', kind: 'duration' },
];

/** `health.start_budget` → `CYBERUN_HEALTH_START_BUDGET`. */
export function envNameOf(keyPath: string): string {
  return `CYBERUN_${keyPath.toUpperCase().replace(/\./g, '_')}`;
}

/** Every leaf key path ("health.start_budget"). */
export const LEAF_PATHS: ReadonlySet<string> = new Set(CONFIG_KEYS.map((k) => k.path));
