import { DOCKER_HUB, normalizeRegistryKey, registryHost } from '../domain/image-source.js';
import { dockerConfigFile } from './credentials-watch.js';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';

/**
 * Registry credentials for image pulls, read the way the docker CLI reads them:
 *
 *   1. `credHelpers[<registry>]`, else `credsStore`: run `docker-credential-<helper> get` with the
 *      server address on stdin (bounded by a timeout);
 *   2. else `auths[<registry>]`: base64 `auth` ("user:password"), or `username`/`password`,
 *      or `identitytoken`.
 *
 * The config is `<dockerConfigDir>/config.json`, where the directory is the constructor option,
 * else `$DOCKER_CONFIG`, else `~/.docker`. It is read on every lookup (pulls are rare; edits by the
 * operator apply without a restart). A missing file means anonymous pulls. Credentials are never
 * logged: log lines name the registry and the helper only.
 */

export interface RegistryCredentials {
  username?: string;
  password?: string;
  identitytoken?: string;
  serveraddress: string;
}

/** The key docker login writes for Docker Hub, and the address credential helpers know it by. */
export const DOCKER_HUB_LEGACY_KEY = 'https://index.docker.io/v1/';

interface AuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
}

interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export interface RegistryAuthOptions {
  logger: Logger;
  dockerConfigDir?: string;
  /** Bound on one credential helper run. */
  helperTimeoutMs?: number;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function fromAuthEntry(entry: AuthEntry, serveraddress: string): RegistryCredentials | undefined {
  const encoded = str(entry.auth);
  if (encoded !== undefined) {
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), serveraddress };
  }
  const username = str(entry.username);
  const password = str(entry.password);
  if (username !== undefined && password !== undefined) return { username, password, serveraddress };
  const identitytoken = str(entry.identitytoken);
  if (identitytoken !== undefined) return { identitytoken, serveraddress };
  return undefined;
}

export { DOCKER_HUB, normalizeRegistryKey, registryHost };

export class RegistryAuth {
  private readonly logger: Logger;
  private readonly configDir: string;
  private readonly helperTimeoutMs: number;

  constructor(options: RegistryAuthOptions) {
    this.logger = options.logger;
    this.configDir = dirname(dockerConfigFile(options.dockerConfigDir));
    this.helperTimeoutMs = options.helperTimeoutMs ?? 10_000;
  }

  /** Credentials for pulling `ref`, or undefined for an anonymous pull. Never throws. */
  async forImage(ref: string): Promise<RegistryCredentials | undefined> {
    const registry = registryHost(ref);
    const config = await this.readConfig();
    if (config === undefined) return undefined;
    const serveraddress = registry === DOCKER_HUB ? DOCKER_HUB_LEGACY_KEY : registry;

    const helper = config.credHelpers?.[registry] ?? (registry === DOCKER_HUB ? config.credHelpers?.['index.docker.io'] : undefined) ?? config.credsStore;
    if (helper !== undefined && helper !== '') {
      const fromHelper = await this.runHelper(helper, serveraddress, registry);
      if (fromHelper !== undefined) return fromHelper;
    }
    for (const [key, entry] of Object.entries(config.auths ?? {})) {
      if (normalizeRegistryKey(key) !== registry) continue;
      const creds = fromAuthEntry(entry, serveraddress);
      if (creds !== undefined) return creds;
    }
    return undefined;
  }

  private async readConfig(): Promise<DockerConfigFile | undefined> {
    const file = join(this.configDir, 'config.json');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.logger.warn({ file, reason: errorMessage(err) }, 'docker config unreadable; pulling anonymously');
      }
      return undefined;
    }
    try {
      const parsed: unknown = JSON.parse(text);
      return parsed !== null && typeof parsed === 'object' ? (parsed as DockerConfigFile) : undefined;
    } catch {
      // The parser's message may quote the file's content: keep it out of the log.
      this.logger.warn({ file }, 'docker config is not valid JSON; pulling anonymously');
      return undefined;
    }
  }

  private async runHelper(helper: string, serveraddress: string, registry: string): Promise<RegistryCredentials | undefined> {
    if (!/^[A-Za-z0-9_.-]+$/.test(helper)) {
      this.logger.warn({ registry, helper }, 'credential helper name is not a plain name; ignored');
      return undefined;
    }
    const program = `docker-credential-${helper}`;
    try {
      const stdout = await new Promise<string>((resolve, reject) => {
        // Our own timer too: execFile's `timeout` kills the helper but still waits for its stdout
        // to close, which a grandchild holding the pipe can delay forever.
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(Object.assign(new Error('credential helper timed out'), { killed: true }));
        }, this.helperTimeoutMs);
        const child = execFile(program, ['get'], { timeout: this.helperTimeoutMs, maxBuffer: 1 << 20 }, (err, out) => {
          clearTimeout(timer);
          if (err) reject(err);
          else resolve(out);
        });
        child.stdin?.on('error', () => undefined); // a helper that exits without reading stdin
        child.stdin?.end(serveraddress);
      });
      const parsed = JSON.parse(stdout) as { Username?: unknown; Secret?: unknown };
      const username = str(parsed.Username);
      const secret = str(parsed.Secret);
      if (secret === undefined) return undefined;
      // Helpers report identity tokens with the placeholder user name "<token>".
      if (username === undefined || username === '<token>') return { identitytoken: secret, serveraddress };
      return { username, password: secret, serveraddress };
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { killed?: boolean };
      // Never log the helper's output: it may contain the secret.
      const reason = e.killed === true ? `timed out after ${this.helperTimeoutMs} ms` : e.code === 'ENOENT' ? 'not installed' : 'no credentials or helper failed';
      this.logger.warn({ registry, helper: program, reason }, 'credential helper gave no credentials');
      return undefined;
    }
  }
}
