import { posix as path } from 'node:path';
import { z } from 'zod';
import { AgentError, ErrorCodes, errorMessage } from '../errors.js';
import type { LogLevel } from './types.js';
import { parseAdminListen } from './admin-listen.js';
import { normalizeRegistryKey, PULL_POLICIES, type PullPolicy } from '../domain/image-source.js';

/**
 * The schema of `cyberun-agent.yaml`: snake_case keys mirroring AgentConfig. Every key is
 * optional; one schema validates every layer (defaults, file, env, flags), so a value is judged the
 * same wherever it came from. Leaves accept the spellings env vars and flags produce ("3", "true",
 * "a,b"), so no layer needs its own coercion. Messages say what is wrong with the value and the fix;
 * the loader adds where the value came from.
 */

const MAX_TIMER_MS = 2_147_483_647; // setTimeout's limit; longer delays fire at once.

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

function invalid(message: string): AgentError {
  return new AgentError(ErrorCodes.CONFIG_INVALID, message);
}

/** A value for a message: quoted, truncated, and never anything that looks like an agent key. */
export function showValue(value: unknown): string {
  if (typeof value === 'string') {
    if (/ak-[A-Za-z0-9_-]{6,}/.test(value)) return '<a value that looks like an agent key, not shown>';
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a mapping' : typeof value;
}

/**
 * Milliseconds from "500ms", "30s", "5m", "2h", "1d", compounds such as "1h30m", fractions such as
 * "1.5s", or integer milliseconds (number or digit string). Throws AgentError(CONFIG_INVALID).
 */
export function parseDuration(value: string | number): number {
  const fix = 'write a number with a unit (ms, s, m, h, d) such as "500ms", "30s", "5m", "1h30m", or integer milliseconds';
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw invalid(`${value} is not an integer number of milliseconds; ${fix}`);
    ms = value;
  } else {
    const text = value.trim();
    if (/^\d+$/.test(text)) {
      ms = Number(text);
    } else if (/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(text)) {
      ms = 0;
      for (const part of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) {
        ms += Number(part[1]) * (DURATION_UNITS[part[2] ?? ''] ?? Number.NaN);
      }
      ms = Math.round(ms);
    } else {
      throw invalid(`${showValue(value)} is not a duration; ${fix}`);
    }
  }
  if (ms < 0) throw invalid(`${showValue(value)} is negative; a duration is 0 or more`);
  if (ms > MAX_TIMER_MS) throw invalid(`${showValue(value)} is longer than 24 days, the longest timer Node.js can run`);
  return ms;
}

/**
 * Bytes from "512MiB", "10GiB" (binary), "10GB" (decimal), "1.5GiB", or integer bytes (number or
 * digit string). Units are case-insensitive. Throws AgentError(CONFIG_INVALID).
 */
export function parseSize(value: string | number): number {
  const fix = 'write bytes or a number with a unit such as "512MiB", "10GiB", "500MB"';
  let bytes: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw invalid(`${value} is not an integer number of bytes; ${fix}`);
    bytes = value;
  } else {
    const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
    const factor = match ? SIZE_UNITS[(match[2] || 'b').toLowerCase()] : undefined;
    if (!match || factor === undefined) throw invalid(`${showValue(value)} is not a size; ${fix}`);
    bytes = Math.floor(Number(match[1]) * factor);
  }
  if (bytes < 0) throw invalid(`${showValue(value)} is negative; a size is 0 or more`);
  if (!Number.isSafeInteger(bytes)) throw invalid(`${showValue(value)} is too large`);
  return bytes;
}

/** The shortest exact spelling parseDuration reads back: 1_200_000 → "20m", 90_000 → "1m30s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}

/** An exact binary-unit spelling when there is one ("10GiB"), else the byte count. */
export function formatSize(bytes: number): string | number {
  for (const [unit, size] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Leaves. Each takes any input (undefined = not set) and either returns the parsed value or adds
// one issue whose message is "<value's problem>; <fix>".

function leaf<T>(parse: (input: unknown) => T) {
  return z
    .unknown()
    .transform((input, ctx): T => {
      try {
        return parse(input);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: errorMessage(err) });
        return z.NEVER;
      }
    })
    .optional();
}

function asString(input: unknown, what: string): string {
  if (typeof input !== 'string') throw invalid(`expected ${what}, got ${showValue(input)}`);
  return input.trim();
}

/** A duration of at least `min`; with `zeroIsOff`, exactly 0 is accepted as well (turns the feature off). */
const duration = (min = 1, zeroIsOff = false) =>
  leaf((input) => {
    if (typeof input !== 'string' && typeof input !== 'number') throw invalid(`expected a duration such as "30s", got ${showValue(input)}`);
    const ms = parseDuration(input);
    if (ms < min && !(zeroIsOff && ms === 0)) {
      const bare = typeof input === 'number' || /^\s*\d+\s*$/.test(input) ? ` (a bare number is milliseconds; write "${String(input).trim()}s" for seconds)` : '';
      throw invalid(`${showValue(input)} is too short; use at least ${formatDuration(min)}${zeroIsOff ? ' (or 0 for never)' : ''}${bare}`);
    }
    return ms;
  });

const size = () =>
  leaf((input) => {
    if (typeof input !== 'string' && typeof input !== 'number') throw invalid(`expected a size such as "10GiB", got ${showValue(input)}`);
    const bytes = parseSize(input);
    if (bytes < 1) throw invalid(`${showValue(input)} is zero; use a positive size such as "10GiB"`);
    return bytes;
  });

const int = (min: number, max: number) =>
  leaf((input) => {
    const n = typeof input === 'string' && /^\s*-?\d+\s*$/.test(input) ? Number(input) : input;
    if (typeof n !== 'number' || !Number.isInteger(n)) throw invalid(`${showValue(input)} is not an integer; write a whole number from ${min} to ${max}`);
    if (n < min || n > max) throw invalid(`${n} is out of range; use a whole number from ${min} to ${max}`);
    return n;
  });

const bool = () =>
  leaf((input) => {
    if (typeof input === 'boolean') return input;
    const text = typeof input === 'string' ? input.trim().toLowerCase() : '';
    if (['true', 'yes', 'on', '1'].includes(text)) return true;
    if (['false', 'no', 'off', '0'].includes(text)) return false;
    throw invalid(`${showValue(input)} is not a boolean; write true or false`);
  });

const oneOf = <const T extends string>(values: readonly T[]) =>
  leaf((input): T => {
    const text = typeof input === 'string' ? input.trim() : input;
    const found = values.find((v) => v === text);
    if (found === undefined) throw invalid(`${showValue(input)} is not allowed; use one of ${values.join(', ')}`);
    return found;
  });

/** A path string; relative paths and "~/" are resolved by the loader against the layer's base. */
const filePath = () =>
  leaf((input) => {
    const text = asString(input, 'a path');
    if (text === '') throw invalid('the path is empty; write a path or remove the key');
    if (text.includes('\0')) throw invalid('the path contains a NUL byte');
    return text;
  });

/** A list given as a YAML list, or as one comma-separated string (env vars, flags). */
function listItems(input: unknown, what: string): string[] {
  const items = typeof input === 'string' ? input.split(',') : input;
  if (!Array.isArray(items)) throw invalid(`expected a list of ${what}, got ${showValue(input)}`);
  return items.map((item) => asString(item, what)).filter((item) => item !== '');
}

const LABEL_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const HOSTNAME_RE = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const NETWORK_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const REFUSED_ROOTS = ['/etc', '/proc', '/sys', '/dev', '/boot'];

const labels = () =>
  leaf((input) => {
    const items = listItems(input, 'labels');
    const bad = items.filter((item) => !LABEL_RE.test(item));
    if (bad.length > 0) {
      throw invalid(
        `${bad.map(showValue).join(', ')} ${bad.length === 1 ? 'is not a valid label' : 'are not valid labels'}; ` +
          'a label is 1-63 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit (e.g. "gpu-h100", "region.eu")',
      );
    }
    return [...new Set(items)];
  });

const allowedRoots = () =>
  leaf((input) => {
    const roots: string[] = [];
    for (const item of listItems(input, 'absolute directories')) {
      if (!item.startsWith('/')) throw invalid(`${showValue(item)} is not absolute; write a full path such as "/data/models"`);
      if (item.split('/').some((seg) => seg === '.' || seg === '..')) {
        throw invalid(`${showValue(item)} contains "." or ".." segments; write the plain absolute path`);
      }
      const root = path.normalize(item).replace(/\/+$/, '') || '/';
      if (root === '/' || REFUSED_ROOTS.some((r) => root === r || root.startsWith(`${r}/`))) {
        throw invalid(`${showValue(item)} would expose the host system (/, ${REFUSED_ROOTS.join(', ')}); allow a dedicated directory such as "/data/models"`);
      }
      if (!roots.includes(root)) roots.push(root);
    }
    return roots;
  });

const gatewayUrl = () =>
  leaf((input) => {
    const text = asString(input, 'a ws:// or wss:// URL');
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw invalid(`${showValue(text)} is not a URL; write e.g. "wss://gateway.example.com/agent"`);
    }
    if (url.username !== '' || url.password !== '') {
      throw invalid('the URL carries credentials; remove them and set agent_key_file or CYBERUN_AGENT_KEY instead');
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
      throw invalid(`${showValue(text)} is not a WebSocket URL; use wss:// (or ws:// for a local gateway)`);
    }
    if (url.hash !== '') throw invalid(`${showValue(text)} has a #fragment; remove it`);
    return url.toString();
  });

const agentId = () =>
  leaf((input) => {
    const text = asString(input, 'a hostname-like id');
    if (!HOSTNAME_RE.test(text)) {
      const hint = HOSTNAME_RE.test(text.toLowerCase()) ? ` (try ${showValue(text.toLowerCase())})` : '';
      throw invalid(`${showValue(text)} is not hostname-like; use lowercase letters, digits, "-" and "." (e.g. "gpu-01.dc1")${hint}`);
    }
    return text;
  });

const dockerHost = () =>
  leaf((input) => {
    const text = asString(input, 'a Docker host URL');
    const match = /^(tcp|http|https|ssh|unix):\/\/(.+)$/.exec(text);
    if (!match || (match[1] === 'unix' && !match[2]?.startsWith('/'))) {
      throw invalid(`${showValue(text)} is not a Docker host; write tcp://host:2375, tcp://host:2376 (with TLS), https://host:2376, ssh://user@host or unix:///path/to/docker.sock`);
    }
    if (match[1] !== 'unix') {
      let url: URL;
      try {
        url = new URL(text.replace(/^(tcp|ssh):/, 'http:'));
      } catch {
        throw invalid(`${showValue(text)} is not a valid host URL; write e.g. tcp://10.0.0.5:2376 or ssh://deploy@gpu-01`);
      }
      if (url.pathname !== '/' && url.pathname !== '') throw invalid(`${showValue(text)} has a path; a Docker host is scheme://host[:port] only`);
      if (url.password !== '' || (url.username !== '' && match[1] !== 'ssh')) {
        throw invalid('the host URL carries credentials; only ssh:// takes a user name (ssh://user@host), and keys come from the ssh-agent');
      }
    }
    return text;
  });

const network = () =>
  leaf((input) => {
    const text = asString(input, 'a Docker network name');
    if (!NETWORK_RE.test(text)) throw invalid(`${showValue(text)} is not a Docker network name; use letters, digits, "_", "." and "-"`);
    if (['bridge', 'host', 'none', 'default'].includes(text)) {
      throw invalid(`${showValue(text)} is one of Docker's built-in networks; the agent needs a network of its own, e.g. "cyberun"`);
    }
    return text;
  });

/** Validated by the admin endpoint's own parser, so the config and the server agree on the syntax. */
const adminListen = () =>
  leaf((input) => {
    const text = asString(input, 'a unix socket path, a loopback host:port, or "off"');
    try {
      parseAdminListen(text, '/');
    } catch (err) {
      throw invalid(errorMessage(err));
    }
    return text;
  });

/** Linux capability names as Docker takes them: "NET_RAW" (a "CAP_" prefix and lower case are accepted). */
const capabilities = () =>
  leaf((input) => {
    const caps = listItems(input, 'capability names').map((c) => c.toUpperCase().replace(/^CAP_/, ''));
    const bad = caps.filter((c) => !/^[A-Z][A-Z0-9_]*$/.test(c));
    if (bad.length > 0) throw invalid(`${bad.map(showValue).join(', ')} is not a capability name; write names such as NET_RAW, SYS_ADMIN (see capabilities(7))`);
    return [...new Set(caps)];
  });

/** A size that may be 0 (= no limit), and at least `min` otherwise. */
const sizeOrZero = (min: number) =>
  leaf((input) => {
    if (typeof input !== 'string' && typeof input !== 'number') throw invalid(`expected a size such as "16GiB" or 0 for none, got ${showValue(input)}`);
    const bytes = parseSize(input);
    if (bytes !== 0 && bytes < min) throw invalid(`${showValue(input)} is too small; use at least ${formatSize(min)} (Docker's minimum), or 0 for no limit`);
    return bytes;
  });

/** A ulimit in bytes, or "unlimited" / -1 (read back as -1). */
const ulimitSize = () =>
  leaf((input) => {
    if (input === -1 || (typeof input === 'string' && ['unlimited', '-1'].includes(input.trim().toLowerCase()))) return -1;
    if (typeof input !== 'string' && typeof input !== 'number') throw invalid(`expected a size such as "64MiB" or "unlimited", got ${showValue(input)}`);
    const bytes = parseSize(input);
    if (bytes < 1) throw invalid(`${showValue(input)} is zero; write a size such as "64MiB" or "unlimited"`);
    return bytes;
  });

const RUNTIME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
const runtimeName = () =>
  leaf((input) => {
    const text = asString(input, 'a Docker runtime name');
    if (!RUNTIME_RE.test(text)) throw invalid(`${showValue(text)} is not a runtime name; write a name from \`docker info\` Runtimes, such as "nvidia" or "runc"`);
    return text;
  });

/** The values the NVIDIA container toolkit reads from NVIDIA_DRIVER_CAPABILITIES. */
export const DRIVER_CAPABILITIES = ['compute', 'compat32', 'graphics', 'utility', 'video', 'display', 'all'] as const;
const driverCapabilities = () =>
  leaf((input) => {
    const items = listItems(input, 'driver capabilities').map((c) => c.toLowerCase());
    const bad = items.filter((c) => !(DRIVER_CAPABILITIES as readonly string[]).includes(c));
    if (bad.length > 0) throw invalid(`${bad.map(showValue).join(', ')} is not an NVIDIA driver capability; use some of ${DRIVER_CAPABILITIES.join(', ')}`);
    if (items.length === 0) throw invalid('the list is empty; name at least one capability, e.g. "compute,utility"');
    return [...new Set(items)];
  });

const REGISTRY_RE = /^(?=.{1,253}(:\d{1,5})?$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$/;
/** Registry hosts ("ghcr.io", "registry.example.com:5000"); Docker Hub's aliases read as "docker.io". */
const registries = () =>
  leaf((input) => {
    const hosts = listItems(input, 'registry hosts').map((h) => h.toLowerCase());
    const bad = hosts.filter((h) => !REGISTRY_RE.test(h));
    if (bad.length > 0) throw invalid(`${bad.map(showValue).join(', ')} is not a registry host; write host[:port] without a scheme or path, e.g. "ghcr.io", "registry.example.com:5000", "docker.io"`);
    return [...new Set(hosts.map(normalizeRegistryKey))];
  });


const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const satisfies readonly LogLevel[];

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
export type ConfigLayer = DeepPartial<ConfigValues>;

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

export type KeyKind = 'url' | 'string' | 'path' | 'list' | 'enum' | 'duration' | 'size' | 'int' | 'bool';

export interface ConfigKey {
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

export interface DefaultsContext {
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
