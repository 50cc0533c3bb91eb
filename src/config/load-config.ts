import os from 'node:os';
import path from 'node:path';
import { AgentError, ErrorCodes } from '../errors.js';
import { configDefaults, type ConfigValues } from './config-schema.js';
import { CONFIG_KEYS } from './config-keys.js';
import { formatDuration, showValue } from './config-units.js';
import type { AgentConfig } from './types.js';
import { dockerTlsLayer, KEY_ENV, parseEnv, parseFlags, parseLayer, readConfigFile, type Candidate, type ConfigIssue, type ConfigSource, type Layer } from './config-layers.js';
import { checkReadableFile, resolveAgentKey } from './agent-key.js';
import { toAgentConfig } from './config-output.js';
import { originOf, setPath } from './config-paths.js';

export { parseDuration, parseSize } from './config-units.js';
export type { ConfigIssue, ConfigSource } from './config-layers.js';
export { maskedConfig, maskSecret } from './config-output.js';

/**
 * cyberun-agent.yaml + CYBERUN_* env + flags → validated AgentConfig.
 *
 *   defaults < DOCKER_HOST < file < CYBERUN_* env < flags      (a higher layer replaces a key whole;
 *                                                              lists are never merged across layers)
 *
 * Every layer is validated on its own, so a broken value is reported even where a higher layer
 * overrides it, and every problem of every layer is thrown at once. Messages never contain the
 * agent key: it is never echoed, and as a last guard its value is scrubbed from every message.
 * See docs/configuration.md for the reference.
 */


export interface LoadConfigInput {
  argv: string[];
  env: Record<string, string | undefined>;
  cwd: string;
  /** Host facts, for tests; default os.hostname(), process.getuid(), os.homedir(). */
  hostname?: string;
  uid?: number;
  homedir?: string;
  /** Where to look when no file is named; default ./cyberun-agent.yaml, /etc/cyberun-agent/cyberun-agent.yaml. */
  searchPaths?: string[];
  /** CYBERUN_* names owned by other components (e.g. the local gateway); not reported as unknown. */
  extraEnvKeys?: readonly string[];
}

export interface LoadedConfig {
  config: AgentConfig;
  /** Per key path (and `agent_key` when set): which layer the effective value came from. */
  sources: Record<string, ConfigSource>;
  /** Per key path: the exact origin, e.g. `env CYBERUN_DOCKER_NETWORK`, `flag --set pull.stall_timeout`. */
  origins: Record<string, string>;
  warnings: string[];
  /** The config file that was read, if any. */
  configFile: string | undefined;
}


export async function loadConfig(input: LoadConfigInput): Promise<LoadedConfig> {
  const issues: ConfigIssue[] = [];
  const warnings: string[] = [];
  const { env, cwd } = input;
  const home = input.homedir ?? env['HOME'] ?? os.homedir();

  const flags = parseFlags(input.argv, cwd, issues);
  const envLayer = parseEnv(env, cwd, new Set(input.extraEnvKeys ?? []), issues);
  const file = await readConfigFile(flags.configPath, env, input, issues);

  const xdg = env['XDG_STATE_HOME'];
  const systemdState = env['STATE_DIRECTORY']?.split(':')[0];
  const defaults: Layer = {
    source: 'default',
    base: cwd,
    raw: configDefaults({
      hostname: input.hostname ?? os.hostname(),
      uid: input.uid ?? process.getuid?.() ?? -1,
      home,
      xdgStateHome: xdg !== undefined && path.isAbsolute(xdg) ? xdg : undefined,
      systemdStateDirectory: systemdState !== undefined && path.isAbsolute(systemdState) ? systemdState : undefined,
    }),
    origins: new Map([['agent_id', 'default: the host name']]),
    fallback: 'default',
  };
  const layers: Layer[] = [defaults];
  const dockerHost = env['DOCKER_HOST']?.trim();
  if (dockerHost) {
    layers.push({ source: 'env', base: cwd, raw: { docker: { host: dockerHost } }, origins: new Map(), fallback: 'env DOCKER_HOST' });
  }
  const dockerTls = dockerTlsLayer(env, cwd, home);
  if (dockerTls) layers.push(dockerTls);
  if (file.layer) layers.push(file.layer);
  layers.push(envLayer.layer, flags.layer);

  // Parse each layer on its own; the highest layer that sets a key wins it.
  // A bad default (the host name as agent_id) matters only where no layer above replaces it.
  const winners = new Map<string, Candidate>();
  const defaultIssues: ConfigIssue[] = [];
  layers.forEach((layer, rank) => {
    for (const [keyPath, value] of parseLayer(layer, home, rank === 0 ? defaultIssues : issues, warnings)) {
      winners.set(keyPath, { value, source: layer.source, origin: originOf(layer, keyPath), rank });
    }
  });
  issues.push(...defaultIssues.filter((i) => !winners.has(i.path)));

  const values: Record<string, unknown> = {};
  for (const [keyPath, winner] of winners) setPath(values, keyPath, winner.value);
  // Complete: the defaults layer sets every key that AgentConfig requires (a test holds it so).
  const merged = values as unknown as ConfigValues;
  const originOfKey = (keyPath: string) => winners.get(keyPath)?.origin ?? 'default';

  if (merged.docker?.host?.startsWith('unix://')) {
    // A unix:// host names a socket: it wins over docker.socket as any host would.
    const host = winners.get('docker.host');
    merged.docker.socket = merged.docker.host.slice('unix://'.length);
    merged.docker.host = undefined;
    if (host) winners.set('docker.socket', host);
    winners.delete('docker.host');
  }

  const valid = issues.length === 0;
  if (valid) crossCheck(merged, originOfKey, issues, warnings);
  const key = await resolveAgentKey(merged, winners, envLayer.agentKey, issues, warnings);
  if (valid && merged.gateway_ca_file !== undefined) await checkReadableFile(merged.gateway_ca_file, 'gateway_ca_file', originOfKey('gateway_ca_file'), issues);
  if (valid && merged.proxy.upstream_ca_file !== undefined) await checkReadableFile(merged.proxy.upstream_ca_file, 'proxy.upstream_ca_file', originOfKey('proxy.upstream_ca_file'), issues);
  for (const name of ['ca_file', 'cert_file', 'key_file'] as const) {
    const file = merged.docker.tls?.[name];
    if (valid && file !== undefined) await checkReadableFile(file, `docker.tls.${name}`, originOfKey(`docker.tls.${name}`), issues);
  }
  if (valid && merged.gateway_url !== undefined && key.value === undefined && !issues.some((i) => i.path === 'agent_key')) {
    issues.push({
      path: 'agent_key',
      message: `gateway_url is set (${originOfKey('gateway_url')}) but no agent key is configured; set agent_key_file to a file holding the ak-… key (mode 600) or set ${KEY_ENV}`,
    });
  }

  const scrub = (text: string) => {
    const clean = text.replace(/\bak-[A-Za-z0-9_-]{6,}/g, 'ak-[redacted]');
    return key.value !== undefined && key.value.length >= 4 ? clean.split(key.value).join('[redacted]') : clean;
  };
  if (issues.length > 0) {
    const clean = issues.map((i) => ({ path: i.path, message: scrub(i.message) }));
    const lines = clean.map((i) => `  ${i.path}: ${i.message}`);
    throw new AgentError(
      ErrorCodes.CONFIG_INVALID,
      `invalid configuration (${clean.length} problem${clean.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
      { details: { issues: clean } },
    );
  }

  const sources: Record<string, ConfigSource> = {};
  const origins: Record<string, string> = {};
  for (const { path: keyPath } of CONFIG_KEYS) {
    const winner = winners.get(keyPath);
    sources[keyPath] = winner?.source ?? 'default';
    origins[keyPath] = winner?.origin ?? 'default';
  }
  if (key.value !== undefined && key.source !== undefined && key.origin !== undefined) {
    sources['agent_key'] = key.source;
    origins['agent_key'] = key.origin;
  }
  return { config: toAgentConfig(merged, key.value), sources, origins, warnings: warnings.map(scrub), configFile: file.path };
}

// ---------------------------------------------------------------------------------------------
// Checks across keys, and the agent key

function crossCheck(c: ConfigValues, originOf: (k: string) => string, issues: ConfigIssue[], warnings: string[]): void {
  const pairs: Array<[string, number, string, number, string]> = [
    ['restart.backoff_base', c.restart.backoff_base, 'restart.backoff_cap', c.restart.backoff_cap, 'lower backoff_base or raise backoff_cap'],
    ['pull.backoff_base', c.pull.backoff_base, 'pull.backoff_cap', c.pull.backoff_cap, 'lower backoff_base or raise backoff_cap'],
    ['pull.stall_timeout', c.pull.stall_timeout, 'pull.total_timeout', c.pull.total_timeout, 'lower stall_timeout or raise total_timeout'],
    ['health.timeout', c.health.timeout, 'health.interval', c.health.interval, 'probes would overlap; lower health.timeout or raise health.interval'],
  ];
  for (const [small, a, big, b, fix] of pairs) {
    if (a > b) {
      issues.push({
        path: small,
        message: `${formatDuration(a)} (${originOf(small)}) is longer than ${big} ${formatDuration(b)} (${originOf(big)}); ${fix}`,
      });
    }
  }
  if (c.image_gc.low_percent > c.image_gc.high_percent) {
    issues.push({
      path: 'image_gc.low_percent',
      message: `${c.image_gc.low_percent} (${originOf('image_gc.low_percent')}) is above image_gc.high_percent ${c.image_gc.high_percent} (${originOf('image_gc.high_percent')}); collection stops at low_percent, so lower low_percent or raise high_percent`,
    });
  }
  if (c.gateway_url !== undefined && c.services_dir !== undefined) {
    // Each source delivers the full desired set: two of them would keep removing each other's services.
    issues.push({
      path: 'services_dir',
      message: `services_dir (${originOf('services_dir')}) and gateway_url (${originOf('gateway_url')}) are both set; an agent takes its services from one source: remove one of them`,
    });
  }
  const tls = c.docker.tls;
  if (tls !== undefined && (tls.cert_file === undefined) !== (tls.key_file === undefined)) {
    const [set, missing] = tls.cert_file === undefined ? ['key_file', 'cert_file'] : ['cert_file', 'key_file'];
    issues.push({ path: `docker.tls.${missing}`, message: `docker.tls.${set} is set (${originOf(`docker.tls.${set}`)}) but docker.tls.${missing} is not; a client certificate needs its key: set both, or neither` });
  }
  const tlsKey = tls === undefined ? undefined : (['ca_file', 'cert_file', 'key_file'] as const).find((k) => tls[k] !== undefined);
  if (tlsKey !== undefined && c.docker.host !== undefined && /^(http|ssh):/.test(c.docker.host)) {
    issues.push({
      path: 'docker.host',
      message: `${showValue(c.docker.host)} (${originOf('docker.host')}) does not use TLS, but docker.tls.${tlsKey} is set (${originOf(`docker.tls.${tlsKey}`)}); write tcp:// or https:// for TLS, or remove the docker.tls.* keys`,
    });
  }
  if (c.gateway_url?.startsWith('ws://')) {
    const host = new URL(c.gateway_url).hostname;
    if (!['localhost', '127.0.0.1', '[::1]'].includes(host) && !host.endsWith('.localhost')) {
      warnings.push(`gateway_url: ws:// to ${host} (${originOf('gateway_url')}) sends the agent key and all traffic unencrypted; use wss://`);
    }
  }
}
