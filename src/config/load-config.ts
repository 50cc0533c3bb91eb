import { constants as fsConstants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { AgentError, ErrorCodes } from '../errors.js';
import {
  CONFIG_KEYS,
  configDefaults,
  configFileSchema,
  envNameOf,
  formatDuration,
  formatSize,
  showValue,
  type ConfigValues,
} from './config-schema.js';
import type { AgentConfig } from './types.js';

export { parseDuration, parseSize } from './config-schema.js';

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

export type ConfigSource = 'flag' | 'env' | 'file' | 'default';

export interface ConfigIssue {
  /** What the user wrote: a key path (`health.start_budget`), a flag, an env var, or `config`. */
  path: string;
  message: string;
}

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

interface Layer {
  source: ConfigSource;
  /** Relative paths in this layer resolve against this directory. */
  base: string;
  raw: Record<string, unknown>;
  /** Origin per key path; `fallback` for keys not listed (structure errors in a file). */
  origins: Map<string, string>;
  fallback: string;
}

interface Candidate {
  value: unknown;
  source: ConfigSource;
  origin: string;
  rank: number;
}

const LEAF_PATHS = new Set(CONFIG_KEYS.map((k) => k.path));
const PATH_KEYS = new Set(CONFIG_KEYS.filter((k) => k.kind === 'path').map((k) => k.path));
const ENV_TO_KEY = new Map(CONFIG_KEYS.map((k) => [envNameOf(k.path), k.path]));
const FLAG_TO_KEY = new Map(CONFIG_KEYS.flatMap((k) => (k.flag === undefined ? [] : [[k.flag, k.path] as const])));
const KNOWN_FLAGS = ['--config', '--set', ...FLAG_TO_KEY.keys()];
const KEY_ENV = 'CYBERUN_AGENT_KEY';
const CONFIG_ENV = 'CYBERUN_CONFIG';
const KEY_REFUSAL =
  'the agent key is never taken from the command line, where every user can read it in `ps`; ' +
  'put it in a file readable only by the agent (agent_key_file, mode 600) or set CYBERUN_AGENT_KEY';

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
// Layers

function parseFlags(argv: string[], cwd: string, issues: ConfigIssue[]): { layer: Layer; configPath: string | undefined } {
  const raw: Record<string, unknown> = {};
  const origins = new Map<string, string>();
  let configPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] ?? '';
    if (!token.startsWith('--')) {
      issues.push({ path: 'argv', message: `unexpected argument ${showValue(token)}; flags are written --name value or --name=value` });
      continue;
    }
    const eq = token.indexOf('=');
    const name = eq === -1 ? token : token.slice(0, eq);
    let value: string | undefined = eq === -1 ? undefined : token.slice(eq + 1);
    if (value === undefined && i + 1 < argv.length && !argv[i + 1]?.startsWith('--')) value = argv[++i];
    if (name === '--agent-key') {
      issues.push({ path: name, message: `refused: ${KEY_REFUSAL}` });
      continue;
    }
    if (!KNOWN_FLAGS.includes(name)) {
      const hint = didYouMean(name, KNOWN_FLAGS);
      issues.push({ path: name, message: `unknown flag${hint || '; see docs/configuration.md, or use --set <key.path>=<value>'}` });
      continue;
    }
    if (value === undefined) {
      issues.push({ path: name, message: `needs a value: ${name} <value> or ${name}=<value>` });
      continue;
    }
    if (name === '--config') {
      configPath = path.resolve(cwd, value);
    } else if (name === '--set') {
      const sep = value.indexOf('=');
      const keyPath = sep === -1 ? value : value.slice(0, sep).trim();
      if (sep === -1) {
        issues.push({ path: '--set', message: `${showValue(value)} has no "="; write --set <key.path>=<value>, e.g. --set health.start_budget=30m` });
      } else if (keyPath === 'agent_key') {
        issues.push({ path: '--set agent_key', message: `refused: ${KEY_REFUSAL}` });
      } else if (!LEAF_PATHS.has(keyPath)) {
        issues.push({ path: keyPath, message: `${unknownKeyMessage(keyPath)} (flag --set)` });
      } else {
        setPath(raw, keyPath, value.slice(sep + 1));
        origins.set(keyPath, `flag --set ${keyPath}`);
      }
    } else if (name === '--label') {
      // Repeatable: the first --label replaces whatever set agent_labels before; later ones append.
      const labels = origins.get('agent_labels') === 'flag --label' && Array.isArray(raw['agent_labels']) ? raw['agent_labels'] : [];
      raw['agent_labels'] = [...labels, ...value.split(',').map((s) => s.trim()).filter((s) => s !== '')];
      origins.set('agent_labels', 'flag --label');
    } else {
      const keyPath = FLAG_TO_KEY.get(name) ?? '';
      setPath(raw, keyPath, value);
      origins.set(keyPath, `flag ${name}`);
    }
  }
  return { layer: { source: 'flag', base: cwd, raw, origins, fallback: 'flags' }, configPath };
}

/**
 * DOCKER_TLS_VERIFY (any non-empty value, as the docker CLI reads it) asks for TLS with the
 * docker CLI's files: ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH, else ~/.docker. Like
 * DOCKER_HOST, a default below the file.
 */
function dockerTlsLayer(env: Record<string, string | undefined>, cwd: string, home: string): Layer | undefined {
  if (!env['DOCKER_TLS_VERIFY']?.trim()) return undefined;
  const certPath = env['DOCKER_CERT_PATH']?.trim() || path.join(home, '.docker');
  const origin = `env DOCKER_TLS_VERIFY (${env['DOCKER_CERT_PATH']?.trim() ? 'DOCKER_CERT_PATH' : 'no DOCKER_CERT_PATH: ~/.docker'})`;
  const files = { ca_file: 'ca.pem', cert_file: 'cert.pem', key_file: 'key.pem' };
  return {
    source: 'env',
    base: cwd,
    raw: { docker: { tls: Object.fromEntries(Object.entries(files).map(([key, name]) => [key, path.join(certPath, name)])) } },
    origins: new Map(Object.keys(files).map((key) => [`docker.tls.${key}`, origin])),
    fallback: origin,
  };
}

function parseEnv(
  env: Record<string, string | undefined>,
  cwd: string,
  extra: ReadonlySet<string>,
  issues: ConfigIssue[],
): { layer: Layer; agentKey: string | undefined } {
  const raw: Record<string, unknown> = {};
  const origins = new Map<string, string>();
  let agentKey: string | undefined;
  for (const name of Object.keys(env).filter((n) => n.startsWith('CYBERUN_')).sort()) {
    const value = env[name]?.trim() ?? '';
    if (name === KEY_ENV) {
      if (value !== '') agentKey = value;
      continue;
    }
    if (name === CONFIG_ENV || extra.has(name)) continue;
    const keyPath = ENV_TO_KEY.get(name);
    if (keyPath === undefined) {
      const hint = didYouMean(name, [...ENV_TO_KEY.keys(), KEY_ENV, CONFIG_ENV]);
      issues.push({ path: name, message: `unknown environment variable${hint || '; unset it, or see docs/configuration.md for the names'}` });
      continue;
    }
    if (value === '') continue; // an empty variable is an unset one
    setPath(raw, keyPath, value);
    origins.set(keyPath, `env ${name}`);
  }
  return { layer: { source: 'env', base: cwd, raw, origins, fallback: 'env' }, agentKey };
}

async function readConfigFile(
  flagPath: string | undefined,
  env: Record<string, string | undefined>,
  input: LoadConfigInput,
  issues: ConfigIssue[],
): Promise<{ path: string | undefined; layer: Layer | undefined }> {
  const envPath = env[CONFIG_ENV]?.trim();
  let file: string | undefined;
  let named: string | undefined;
  if (flagPath !== undefined) [file, named] = [flagPath, 'flag --config'];
  else if (envPath) [file, named] = [path.resolve(input.cwd, envPath), `env ${CONFIG_ENV}`];
  else {
    const search = input.searchPaths ?? [path.join(input.cwd, 'cyberun-agent.yaml'), '/etc/cyberun-agent/cyberun-agent.yaml'];
    for (const candidate of search) {
      if (await exists(candidate)) {
        file = candidate;
        break;
      }
    }
  }
  if (file === undefined) return { path: undefined, layer: undefined };

  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = fsReason(err);
    issues.push({ path: 'config', message: `cannot read config file ${file}: ${reason}${named ? ` (${named})` : ''}; fix the path or the file's permissions` });
    return { path: file, layer: undefined };
  }
  const doc = parseDocument(text);
  const yamlError = doc.errors[0];
  if (yamlError) {
    // Only the first line: later lines quote the file's text, which could hold a secret.
    const where = yamlError.linePos ? ` at line ${yamlError.linePos[0].line}, column ${yamlError.linePos[0].col}` : '';
    const what = (yamlError.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '').replace(/:$/, '');
    issues.push({ path: 'config', message: `${file} is not valid YAML${where}: ${what}; fix the syntax` });
    return { path: file, layer: undefined };
  }
  const content: unknown = doc.toJS() ?? {};
  if (!isPlainObject(content)) {
    issues.push({ path: 'config', message: `${file} holds ${showValue(content)}, not a mapping of keys; see docs/configuration.md` });
    return { path: file, layer: undefined };
  }
  const raw = stripNulls(content);
  if ('agent_key' in raw) {
    delete raw['agent_key'];
    issues.push({ path: 'agent_key', message: `refused in ${file}: the key does not belong in the config file; put it in its own file (mode 600) named by agent_key_file, or set ${KEY_ENV}` });
  }
  return { path: file, layer: { source: 'file', base: path.dirname(file), raw, origins: new Map(), fallback: `file ${file}` } };
}

/**
 * Validates one layer; yields its valid keys with paths resolved (a layer with a bad key still
 * yields its good ones). Adds issues and warnings.
 */
function parseLayer(layer: Layer, home: string, issues: ConfigIssue[], warnings: string[]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  let result = configFileSchema.safeParse(layer.raw);
  if (!result.success) {
    const pruned = structuredClone(layer.raw);
    for (const issue of result.error.issues) {
      const at = issue.path.filter((p): p is string => typeof p === 'string');
      if (issue.code === 'unrecognized_keys') {
        for (const k of issue.keys) {
          const keyPath = [...at, k].join('.');
          deletePath(pruned, keyPath);
          issues.push({ path: keyPath, message: `${unknownKeyMessage(keyPath)} (${originOf(layer, keyPath)})` });
        }
        continue;
      }
      const keyPath = leafOf(at);
      deletePath(pruned, keyPath);
      const message = LEAF_PATHS.has(keyPath)
        ? issue.message
        : `expected a mapping of ${keyPath}.* keys, got ${showValue(getPath(layer.raw, keyPath))}; see docs/configuration.md`;
      issues.push({ path: keyPath, message: `${message} (${originOf(layer, keyPath)})` });
    }
    result = configFileSchema.safeParse(pruned);
    if (!result.success) return out;
  }
  const data = result.data as Record<string, unknown>;
  for (const { path: keyPath, kind } of CONFIG_KEYS) {
    const value = getPath(data, keyPath);
    if (value === undefined) continue;
    if (kind === 'duration' && layer.source !== 'default') warnBareMilliseconds(getPath(layer.raw, keyPath), keyPath, originOf(layer, keyPath), warnings);
    out.set(keyPath, PATH_KEYS.has(keyPath) && typeof value === 'string' ? resolvePath(value, layer.base, home) : value);
  }
  return out;
}

function warnBareMilliseconds(raw: unknown, keyPath: string, origin: string, warnings: string[]): void {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : undefined;
  if (n !== undefined && n > 0 && n < 1000) {
    warnings.push(`${keyPath}: ${n} (${origin}) is read as ${n} milliseconds; write "${n}ms" to say so, or "${n}s" if you meant seconds`);
  }
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

interface ResolvedKey {
  value: string | undefined;
  source?: ConfigSource;
  origin?: string;
}

async function resolveAgentKey(
  c: ConfigValues,
  winners: Map<string, Candidate>,
  envKey: string | undefined,
  issues: ConfigIssue[],
  warnings: string[],
): Promise<ResolvedKey> {
  const fileWinner = winners.get('agent_key_file');
  if (envKey !== undefined && fileWinner?.source === 'env') {
    issues.push({ path: 'agent_key', message: `both ${KEY_ENV} and ${envNameOf('agent_key_file')} are set; set only one` });
    return { value: envKey };
  }
  if (envKey !== undefined && (fileWinner === undefined || fileWinner.source !== 'flag')) {
    // The env var outranks a key file named by the file or defaults, as env outranks file.
    if (checkKeyText(envKey, KEY_ENV, 'agent_key', issues, warnings)) return { value: envKey, source: 'env', origin: `env ${KEY_ENV}` };
    return { value: envKey };
  }
  if (c.agent_key_file === undefined || fileWinner === undefined) return { value: undefined };

  const file = c.agent_key_file;
  const where = `agent key file ${file} (${fileWinner.origin})`;
  let text: string;
  try {
    const info = await stat(file);
    if (!info.isFile()) {
      issues.push({ path: 'agent_key_file', message: `${where} is not a regular file; point agent_key_file at the file holding the key` });
      return { value: undefined };
    }
    if (info.size > 4096) {
      issues.push({ path: 'agent_key_file', message: `${where} is ${info.size} bytes; an agent key file holds only the key` });
      return { value: undefined };
    }
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    // As OpenSSH does with private keys: a key any user can read, or others can replace, is refused.
    // Group read alone is a warning (a root:<agent group> file some deployments use).
    if ((info.mode & 0o026) !== 0) {
      issues.push({ path: 'agent_key_file', message: `${where} is refused: other users can read or change it (mode ${mode}); run: chmod 600 ${file}` });
      return { value: undefined };
    }
    text = (await readFile(file, 'utf8')).trim();
    if ((info.mode & 0o077) !== 0) warnings.push(`agent_key_file: ${file} is readable by its group (mode ${mode}); run: chmod 600 ${file}`);
  } catch (err) {
    issues.push({ path: 'agent_key_file', message: `cannot read ${where}: ${fsReason(err)}; fix the path, or make the file readable by the agent's user` });
    return { value: undefined };
  }
  if (!checkKeyText(text, where, 'agent_key_file', issues, warnings)) return { value: text };
  return { value: text, source: fileWinner.source, origin: `${fileWinner.origin} → ${file}` };
}

/** Checks the key's shape without ever quoting it. */
function checkKeyText(key: string, where: string, at: string, issues: ConfigIssue[], warnings: string[]): boolean {
  if (key === '') {
    issues.push({ path: at, message: `${where} is empty; it must hold the ak-… key` });
    return false;
  }
  if (!/^[\x21-\x7e]+$/.test(key)) {
    issues.push({ path: at, message: `${where} holds whitespace or non-printable characters; it must hold only the key, on one line` });
    return false;
  }
  if (!key.startsWith('ak-')) warnings.push(`${at}: the key from ${where} does not start with "ak-", as agent keys do`);
  return true;
}

async function checkReadableFile(file: string, at: string, origin: string, issues: ConfigIssue[]): Promise<void> {
  try {
    await access(file, fsConstants.R_OK);
    if (!(await stat(file)).isFile()) issues.push({ path: at, message: `${file} (${origin}) is not a regular file; name a PEM file` });
  } catch (err) {
    issues.push({ path: at, message: `cannot read ${file} (${origin}): ${fsReason(err)}; fix the path or the file's permissions` });
  }
}

// ---------------------------------------------------------------------------------------------
// Output

function toAgentConfig(c: ConfigValues, agentKey: string | undefined): AgentConfig {
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

// ---------------------------------------------------------------------------------------------
// Small helpers

function originOf(layer: Layer, keyPath: string): string {
  return layer.origins.get(keyPath) ?? layer.fallback;
}

/** The key path an issue belongs to: its path up to the first leaf (list indices dropped). */
function leafOf(at: string[]): string {
  for (let n = 1; n <= at.length; n++) {
    const prefix = at.slice(0, n).join('.');
    if (LEAF_PATHS.has(prefix)) return prefix;
  }
  return at.join('.');
}

function unknownKeyMessage(keyPath: string): string {
  const parts = keyPath.split('.');
  const last = parts.at(-1) ?? keyPath;
  const parent = parts.slice(0, -1).join('.');
  const children = new Set<string>();
  for (const k of CONFIG_KEYS) {
    const segs = k.path.split('.');
    if (segs.slice(0, parts.length - 1).join('.') === parent && segs.length >= parts.length) children.add(segs[parts.length - 1] ?? '');
  }
  if (children.has(last)) {
    const leaves = CONFIG_KEYS.filter((k) => k.path.startsWith(`${keyPath}.`)).map((k) => k.path);
    return `is a section, not a key; set one of ${leaves.join(', ')}`;
  }
  let hint = didYouMean(last, [...children]);
  if (hint === '') {
    const elsewhere = CONFIG_KEYS.find((k) => k.path.split('.').at(-1) === last);
    if (elsewhere) hint = `; did you mean "${elsewhere.path}"?`;
  }
  return `unknown key${hint}`;
}

function didYouMean(word: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 4)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best === undefined ? '' : `; did you mean "${best}"?`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

function resolvePath(value: string, base: string, home: string): string {
  const expanded = value === '~' ? home : value.startsWith('~/') ? path.join(home, value.slice(2)) : value;
  return path.resolve(base, expanded);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `key: null` (or an empty `key:`) means "not set": drop it, at any depth of mappings. */
function stripNulls(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === null) continue;
    out[k] = isPlainObject(v) ? stripNulls(v) : v;
  }
  return out;
}

function getPath(obj: Record<string, unknown>, keyPath: string): unknown {
  let node: unknown = obj;
  for (const seg of keyPath.split('.')) node = isPlainObject(node) ? node[seg] : undefined;
  return node;
}

function deletePath(obj: Record<string, unknown>, keyPath: string): void {
  const segs = keyPath.split('.');
  const parent = segs.length === 1 ? obj : getPath(obj, segs.slice(0, -1).join('.'));
  if (isPlainObject(parent)) delete parent[segs.at(-1) ?? keyPath];
}

function setPath(obj: Record<string, unknown>, keyPath: string, value: unknown): void {
  const segs = keyPath.split('.');
  let node = obj;
  for (const seg of segs.slice(0, -1)) {
    const next = node[seg];
    node = isPlainObject(next) ? next : (node[seg] = {});
  }
  node[segs.at(-1) ?? keyPath] = value;
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return code ?? 'unreadable';
}
