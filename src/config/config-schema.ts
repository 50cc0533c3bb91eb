import { posix as path } from 'node:path';
import { z } from 'zod';
import type { PullPolicy } from '../domain/image-source.js';
import { PULL_POLICIES } from '../domain/image-source.js';
import { bool, duration, filePath, int, oneOf, size } from './config-leaves.js';
import {
  adminListen,
  agentId,
  allowedRoots,
  capabilities,
  dockerHost,
  driverCapabilities,
  gatewayUrl,
  labels,
  LOG_LEVELS,
  network,
  registries,
  runtimeName,
  sizeOrZero,
  ulimitSize,
} from './field-leaves.js';
import type { LogLevel } from './types.js';

/**
 * The schema of `cyberun-agent.yaml`: snake_case keys mirroring AgentConfig. Every key is
 * optional; one schema validates every layer (defaults, file, env, flags), so a value is judged the
 * same wherever it came from. Leaves accept the spellings env vars and flags produce ("3", "true",
 * "a,b"), so no layer needs its own coercion. Messages say what is wrong with the value and the fix;
 * the loader adds where the value came from.
 */
// ---------------------------------------------------------------------------------------------

/** The parsed, merged values in the file's shape: durations in ms, sizes in bytes. */
export interface ConfigValues {
  gateway_url: string | undefined;
  agent_id: string;
  agent_key_file: string | undefined;
  gateway_ca_file: string | undefined;
  agent_labels: string[];
  state_dir: string;
  services_dir: string | undefined;
  docker: {
    socket: string;
    host: string | undefined;
    network: string;
    addressing: 'auto' | 'ip' | 'published';
    api_timeout: number;
    /** No default sets a TLS file, so `tls` itself may be missing. */
    tls?: { ca_file?: string | undefined; cert_file?: string | undefined; key_file?: string | undefined };
  };
  volumes: { allowed_roots: string[] };
  gpu: { detect: 'auto' | 'none'; device_style: 'device-ids' | 'cdi'; inventory_refresh: number; driver_capabilities: string[] };
  health: { interval: number; timeout: number; start_budget: number; failure_threshold: number };
  restart: { backoff_base: number; backoff_cap: number; stable_after: number; crash_loop_limit: number; failed_retry: number; stop_timeout: number };
  pull: { stall_timeout: number; total_timeout: number; backoff_base: number; backoff_cap: number; policy: PullPolicy; allowed_registries: string[] };
  /** No default sets containers.runtime, so it may be missing. */
  containers: {
    cap_drop: string[];
    pids_limit: number;
    shm_size: number;
    memory_limit: number;
    runtime?: string | undefined;
    gpu: { shm_size: number; memlock: number; stack: number };
  };
  reconcile: { resync_interval: number; orphan_grace: number };
  proxy: { max_body: number; headers_timeout: number; idle_timeout: number; allow_private_upstreams: boolean; upstream_ca_file: string | undefined };
  /** No default sets admin.listen (unset = the socket in state_dir), so `admin` itself may be missing. */
  admin: { listen: string | undefined };
  shutdown: { drain_timeout: number };
  log_level: LogLevel;
  image_gc: { enabled: boolean; high_percent: number; low_percent: number; min_age: number; interval: number };
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends unknown[] ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** What one layer (a file, the env, the flags) parses to: any subset of the keys. */
type ConfigLayer = DeepPartial<ConfigValues>;

const section = <S extends z.ZodRawShape>(shape: S) => z.strictObject(shape).optional();

export const configFileSchema: z.ZodType<ConfigLayer> = z.strictObject({
  gateway_url: gatewayUrl(),
  agent_id: agentId(),
  agent_key_file: filePath(),
  gateway_ca_file: filePath(),
  agent_labels: labels(),
  state_dir: filePath(),
  services_dir: filePath(),
  docker: section({
    socket: filePath(),
    host: dockerHost(),
    network: network(),
    addressing: oneOf(['auto', 'ip', 'published']),
    api_timeout: duration(100),
    tls: section({ ca_file: filePath(), cert_file: filePath(), key_file: filePath() }),
  }),
  volumes: section({ allowed_roots: allowedRoots() }),
  gpu: section({
    detect: oneOf(['auto', 'none']),
    device_style: oneOf(['device-ids', 'cdi']),
    inventory_refresh: duration(1000),
    driver_capabilities: driverCapabilities(),
  }),
  health: section({
    interval: duration(100),
    timeout: duration(100),
    start_budget: duration(1000),
    failure_threshold: int(1, 100),
  }),
  restart: section({
    backoff_base: duration(10),
    backoff_cap: duration(10),
    stable_after: duration(1000),
    crash_loop_limit: int(1, 1000),
    failed_retry: duration(1000, true),
    stop_timeout: duration(0),
  }),
  pull: section({
    stall_timeout: duration(1000),
    total_timeout: duration(1000),
    backoff_base: duration(1000),
    backoff_cap: duration(1000),
    policy: oneOf(PULL_POLICIES),
    allowed_registries: registries(),
  }),
  containers: section({
    cap_drop: capabilities(),
    pids_limit: int(0, 4_194_304),
    shm_size: size(),
    memory_limit: sizeOrZero(6 * 2 ** 20),
    runtime: runtimeName(),
    gpu: section({ shm_size: size(), memlock: ulimitSize(), stack: ulimitSize() }),
  }),
  reconcile: section({ resync_interval: duration(1000), orphan_grace: duration(1000) }),
  proxy: section({
    max_body: size(),
    headers_timeout: duration(1000),
    idle_timeout: duration(1000),
    allow_private_upstreams: bool(),
    upstream_ca_file: filePath(),
  }),
  admin: section({ listen: adminListen() }),
  shutdown: section({ drain_timeout: duration(0) }),
  log_level: oneOf(LOG_LEVELS),
  image_gc: section({ enabled: bool(), high_percent: int(0, 100), low_percent: int(0, 100), min_age: duration(0), interval: duration(1000) }),
});

interface DefaultsContext {
  hostname: string;
  /** Effective uid; 0 selects the system state dir. */
  uid: number;
  home: string;
  /** $XDG_STATE_HOME when set to an absolute path. */
  xdgStateHome: string | undefined;
  /** The first path of $STATE_DIRECTORY (systemd's StateDirectory=) when absolute; wins over both. */
  systemdStateDirectory?: string | undefined;
}

/**
 * The defaults, written as a file would write them and validated by the same schema (so a host
 * name that is not a valid agent id is reported, not silently used).
 */
export function configDefaults(ctx: DefaultsContext): Record<string, unknown> {
  const userState = ctx.xdgStateHome ?? path.join(ctx.home, '.local', 'state');
  return {
    agent_id: ctx.hostname.toLowerCase(),
    agent_labels: [],
    state_dir: ctx.systemdStateDirectory ?? (ctx.uid === 0 ? '/var/lib/cyberun-agent' : path.join(userState, 'cyberun-agent')),
    docker: { socket: '/var/run/docker.sock', network: 'cyberun', addressing: 'auto', api_timeout: '30s' },
    volumes: { allowed_roots: [] },
    gpu: { detect: 'auto', device_style: 'device-ids', inventory_refresh: '60s', driver_capabilities: ['compute', 'utility'] },
    health: { interval: '5s', timeout: '3s', start_budget: '20m', failure_threshold: 3 },
    restart: { backoff_base: '1s', backoff_cap: '5m', stable_after: '10m', crash_loop_limit: 5, failed_retry: '5m', stop_timeout: '30s' },
    pull: { stall_timeout: '2m', total_timeout: '2h', backoff_base: '10s', backoff_cap: '5m', policy: 'auto', allowed_registries: [] },
    // Nomad's docker driver drops NET_RAW; NGC's documented flags for GPU model servers.
    containers: { cap_drop: ['NET_RAW'], pids_limit: 32768, shm_size: '64MiB', memory_limit: 0, gpu: { shm_size: '1GiB', memlock: 'unlimited', stack: '64MiB' } },
    reconcile: { resync_interval: '30s', orphan_grace: '60s' },
    proxy: { max_body: '10GiB', headers_timeout: '10m', idle_timeout: '15m', allow_private_upstreams: false },
    shutdown: { drain_timeout: '30s' },
    log_level: 'info',
    image_gc: { enabled: true, high_percent: 85, low_percent: 80, min_age: '5m', interval: '1m' },
  };
}

