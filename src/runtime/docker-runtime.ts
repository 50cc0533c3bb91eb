import { AgentError, ErrorCodes, isAgentError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ContainerCreateRequest, ContainerImageUse, ContainerRuntime, EngineImage, PullOptions, RuntimeEvent } from './container-runtime.js';
import type { ObservedContainer } from '../domain/observed-container.js';
import { fromInspect, fromListEntry, toCreateOptions } from './container-mapper.js';
import { engineMessage } from './docker-errors.js';
import { EngineClient } from './engine-client.js';
import { engineRequest, type EngineRequest } from './engine-request.js';
import type { EngineContainerInspect, EngineContainerListEntry } from './engine-types.js';
import { watchContainerEvents } from './event-watcher.js';
import { ImagePuller } from './image-puller.js';
import { Labels } from '../domain/ownership-labels.js';
import { RegistryAuth } from './registry-auth.js';

export interface DockerRuntimeOptions {
  /** Unix socket of the engine; used when `host` is not set. */
  socketPath: string;
  /** `tcp://host:port` (plain HTTP) of a remote engine, e.g. from DOCKER_HOST. */
  host?: string;
  /** Deadline of every Engine API call except stop/wait (see engine-request.ts). */
  apiTimeoutMs: number;
  /** 'ip': reach replicas at their network IP; 'published': at a published host port; 'auto': published iff `host` is set. */
  addressing: 'auto' | 'ip' | 'published';
  logger: Logger;
  /** Directory holding the docker CLI's config.json (registry credentials). */
  dockerConfigDir?: string;
  /** Delay before re-opening a lost event stream. */
  eventsReconnectDelayMs?: number;
}

/** Docker's label filter syntax: `key=value`, or `key` for "present with any value". */
export function labelFilters(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([key, value]) => (value === '' ? key : `${key}=${value}`));
}

/**
 * Splits a docker log answer into text. Non-TTY containers answer with frames
 * `[stream, 0, 0, 0, size(uint32 BE)] payload`; a TTY container answers raw bytes.
 */
export function demultiplexLogs(buffer: Buffer): string {
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const kind = buffer[offset];
    if ((kind !== 0 && kind !== 1 && kind !== 2) || buffer[offset + 1] !== 0 || buffer[offset + 2] !== 0 || buffer[offset + 3] !== 0) {
      return offset === 0 ? buffer.toString('utf8') : Buffer.concat(chunks).toString('utf8');
    }
    const size = buffer.readUInt32BE(offset + 4);
    chunks.push(buffer.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  if (offset === 0) return buffer.toString('utf8');
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * ContainerRuntime on a Docker Engine through EngineClient (node:http; engine-client.ts says why not
 * dockerode). Stateless apart from the in-flight pulls and the names of networks passed to
 * ensureNetwork (preferred when picking a container's IP); safe to use from many workers at once.
 */
export class DockerRuntime implements ContainerRuntime {
  readonly publishesPorts: boolean;
  private readonly client: EngineClient;
  private readonly engineHost: string;
  private readonly logger: Logger;
  private readonly apiTimeoutMs: number;
  private readonly reconnectDelayMs: number;
  private readonly puller: ImagePuller;
  private readonly networks: string[] = [];

  constructor(options: DockerRuntimeOptions) {
    this.logger = options.logger;
    this.apiTimeoutMs = options.apiTimeoutMs;
    this.reconnectDelayMs = options.eventsReconnectDelayMs ?? 1_000;
    if (options.host !== undefined && options.host !== '') {
      const url = new URL(options.host.replace(/^tcp:\/\//, 'http://'));
      this.engineHost = url.hostname;
      this.client = new EngineClient({ host: url.hostname, port: url.port === '' ? 2375 : Number(url.port) });
    } else {
      this.engineHost = '127.0.0.1';
      this.client = new EngineClient({ socketPath: options.socketPath });
    }
    this.publishesPorts =
      options.addressing === 'published' || (options.addressing === 'auto' && options.host !== undefined && options.host !== '');
    this.puller = new ImagePuller({
      client: this.client,
      logger: options.logger,
      apiTimeoutMs: options.apiTimeoutMs,
      auth: new RegistryAuth({ logger: options.logger, ...(options.dockerConfigDir === undefined ? {} : { dockerConfigDir: options.dockerConfigDir }) }),
    });
  }

  private api<T>(request: EngineRequest, call: string, object: string, timeoutMs: number | undefined = this.apiTimeoutMs): Promise<T> {
    return engineRequest<T>(this.client, request, { call, object }, timeoutMs);
  }

  async ping(): Promise<void> {
    await this.api({ method: 'GET', path: '/_ping', ok: [200], response: 'buffer' }, 'ping', 'the Docker Engine');
  }

  async ensureNetwork(name: string): Promise<void> {
    if (!this.networks.includes(name)) this.networks.push(name);
    // The `name` filter matches substrings: compare exactly.
    const existing = await this.api<Array<{ Name: string }>>(
      { method: 'GET', path: '/networks', query: { filters: { name: [name] } }, ok: [200] },
      'list networks',
      `named "${name}"`,
    );
    if (existing.some((n) => n.Name === name)) return;
    try {
      await this.api(
        {
          method: 'POST',
          path: '/networks/create',
          body: { Name: name, Driver: 'bridge', CheckDuplicate: true, Labels: { [Labels.MANAGED]: 'true' } },
          ok: [201],
        },
        'create network',
        `"${name}"`,
      );
      this.logger.info({ network: name }, 'created network');
    } catch (err) {
      // Lost a race with another creator: the network exists, which is all we promise.
      if (!isAgentError(err, ErrorCodes.DOCKER_CONFLICT)) throw err;
    }
  }

  hasImage(ref: string): Promise<boolean> {
    return this.puller.hasImage(ref);
  }

  pullImage(ref: string, options: PullOptions): Promise<void> {
    return this.puller.pull(ref, options);
  }

  async createContainer(spec: ContainerCreateRequest): Promise<string> {
    const { name, ...body } = toCreateOptions(spec);
    const created = await this.api<{ Id: string; Warnings?: string[] | null }>(
      { method: 'POST', path: '/containers/create', query: { name }, body, ok: [201] },
      'create container',
      `"${spec.name}" from image "${spec.image}"`,
    );
    for (const warning of created.Warnings ?? []) this.logger.warn({ container: spec.name, warning }, 'engine warning on create');
    return created.Id;
  }

  async startContainer(id: string): Promise<void> {
    try {
      await this.api({ method: 'POST', path: `/containers/${id}/start`, ok: [204, 304] }, 'start container', id);
    } catch (err) {
      if (isAgentError(err) && (err.code === ErrorCodes.DOCKER_API || err.code === ErrorCodes.DOCKER_CONFLICT)) {
        throw new AgentError(ErrorCodes.CONTAINER_START_FAILED, `start container ${id} failed: ${engineMessage(err.cause)}`, {
          cause: err.cause,
          details: { container: id },
        });
      }
      throw err;
    }
  }

  async stopContainer(id: string, timeoutMs: number): Promise<void> {
    const seconds = Math.max(0, Math.ceil(timeoutMs / 1000));
    try {
      // The engine itself escalates to SIGKILL after `t`; our deadline only guards a hung engine.
      await this.api({ method: 'POST', path: `/containers/${id}/stop`, query: { t: seconds }, ok: [204, 304] }, 'stop container', id, seconds * 1000 + this.apiTimeoutMs);
    } catch (err) {
      if (!isAgentError(err, ErrorCodes.DOCKER_NOT_FOUND)) throw err;
    }
  }

  async removeContainer(id: string): Promise<void> {
    try {
      await this.api({ method: 'DELETE', path: `/containers/${id}`, query: { force: true, v: true }, ok: [204] }, 'remove container', id);
    } catch (err) {
      if (!isAgentError(err, ErrorCodes.DOCKER_NOT_FOUND)) throw err;
    }
  }

  async renameContainer(id: string, name: string): Promise<void> {
    await this.api({ method: 'POST', path: `/containers/${id}/rename`, query: { name }, ok: [204] }, 'rename container', `${id} to "${name}"`);
  }

  async inspectContainer(id: string): Promise<ObservedContainer | undefined> {
    try {
      const info = await this.api<EngineContainerInspect>({ method: 'GET', path: `/containers/${id}/json`, ok: [200] }, 'inspect container', id);
      return fromInspect(info, this.networks);
    } catch (err) {
      if (isAgentError(err, ErrorCodes.DOCKER_NOT_FOUND)) return undefined;
      throw err;
    }
  }

  async listContainers(labels: Record<string, string>): Promise<ObservedContainer[]> {
    const entries = await this.api<EngineContainerListEntry[]>(
      { method: 'GET', path: '/containers/json', query: { all: true, filters: { label: labelFilters(labels) } }, ok: [200] },
      'list containers',
      `labelled ${labelFilters(labels).join(',')}`,
    );
    return entries.map((entry) => fromListEntry(entry, this.networks));
  }

  async logsTail(id: string, lines: number): Promise<string> {
    const raw = await this.api<Buffer>(
      { method: 'GET', path: `/containers/${id}/logs`, query: { stdout: true, stderr: true, tail: String(lines), follow: false }, ok: [200], response: 'buffer' },
      'read logs of container',
      id,
    );
    return demultiplexLogs(raw);
  }

  replicaEndpoint(c: ObservedContainer, exposedPort: number): { host: string; port: number } | undefined {
    if (this.publishesPorts) return c.publishedPort === undefined ? undefined : { host: this.engineHost, port: c.publishedPort };
    return c.ipAddress === undefined ? undefined : { host: c.ipAddress, port: exposedPort };
  }

  async dataRoot(): Promise<string> {
    const info = await this.api<{ DockerRootDir?: string }>({ method: 'GET', path: '/info', ok: [200] }, 'read engine info', 'the Docker Engine');
    return info.DockerRootDir ?? '/var/lib/docker';
  }

  async listImages(): Promise<EngineImage[]> {
    const list = await this.api<Array<{ Id: string; RepoTags?: string[] | null; RepoDigests?: string[] | null; Size?: number }>>(
      { method: 'GET', path: '/images/json', ok: [200] },
      'list images',
      'on the engine',
    );
    return list.map((i) => ({
      id: i.Id,
      repoTags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
      repoDigests: (i.RepoDigests ?? []).filter((d) => d !== '<none>@<none>'),
      sizeBytes: i.Size ?? 0,
    }));
  }

  async containerImages(): Promise<ContainerImageUse[]> {
    const entries = await this.api<Array<{ Id: string; ImageID: string }>>({ method: 'GET', path: '/containers/json', query: { all: true }, ok: [200] }, 'list containers', 'of every owner');
    return entries.map((e) => ({ containerId: e.Id, imageId: e.ImageID }));
  }

  async removeImage(ref: string): Promise<void> {
    await this.api({ method: 'DELETE', path: `/images/${encodeURIComponent(ref)}`, query: { force: false, noprune: false }, ok: [200] }, 'remove image', `"${ref}"`);
  }

  /** See event-watcher.ts: reconnects with `since`, ends when `signal` aborts. */
  watchEvents(labels: Record<string, string>, onEvent: (e: RuntimeEvent) => void, signal: AbortSignal, onError?: (err: Error) => void): void {
    watchContainerEvents({
      client: this.client,
      filters: { type: ['container'], label: labelFilters(labels) },
      connectTimeoutMs: this.apiTimeoutMs,
      reconnectDelayMs: this.reconnectDelayMs,
      logger: this.logger,
      onEvent,
      signal,
      ...(onError === undefined ? {} : { onError }),
    });
  }
}
