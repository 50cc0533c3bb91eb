/**
 * The layers of the configuration, each read on its own: flags, CYBERUN_* env, DOCKER_TLS_* env,
 * and the YAML file. Each becomes a Layer of raw values with the exact origin of every key, then is
 * validated by the one schema (parseLayer). load-config.ts merges them.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { CONFIG_KEYS, envNameOf, LEAF_PATHS } from './config-keys.js';
import { configFileSchema } from './config-schema.js';
import { showValue } from './config-units.js';
import { deletePath, didYouMean, exists, fsReason, getPath, isPlainObject, leafOf, originOf, resolvePath, setPath, stripNulls, unknownKeyMessage } from './config-paths.js';
import type { LoadConfigInput } from './load-config.js';

export type ConfigSource = 'flag' | 'env' | 'file' | 'default';

export interface ConfigIssue {
  /** What the user wrote: a key path (`health.start_budget`), a flag, an env var, or `config`. */
  path: string;
  message: string;
}

export interface Layer {
  source: ConfigSource;
  /** Relative paths in this layer resolve against this directory. */
  base: string;
  raw: Record<string, unknown>;
  /** Origin per key path; `fallback` for keys not listed (structure errors in a file). */
  origins: Map<string, string>;
  fallback: string;
}

export interface Candidate {
  value: unknown;
  source: ConfigSource;
  origin: string;
  rank: number;
}

const PATH_KEYS = new Set(CONFIG_KEYS.filter((k) => k.kind === 'path').map((k) => k.path));
const ENV_TO_KEY = new Map(CONFIG_KEYS.map((k) => [envNameOf(k.path), k.path]));
const FLAG_TO_KEY = new Map(CONFIG_KEYS.flatMap((k) => (k.flag === undefined ? [] : [[k.flag, k.path] as const])));
const KNOWN_FLAGS = ['--config', '--set', ...FLAG_TO_KEY.keys()];
export const KEY_ENV = 'CYBERUN_AGENT_KEY';
const CONFIG_ENV = 'CYBERUN_CONFIG';
const KEY_REFUSAL =
  'the agent key is never taken from the command line, where every user can read it in `ps`; ' +
  'put it in a file readable only by the agent (agent_key_file, mode 600) or set CYBERUN_AGENT_KEY';

// ---------------------------------------------------------------------------------------------
// Layers

export function parseFlags(argv: string[], cwd: string, issues: ConfigIssue[]): { layer: Layer; configPath: string | undefined } {
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
export function dockerTlsLayer(env: Record<string, string | undefined>, cwd: string, home: string): Layer | undefined {
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

export function parseEnv(
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

export async function readConfigFile(
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
export function parseLayer(layer: Layer, home: string, issues: ConfigIssue[], warnings: string[]): Map<string, unknown> {
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
