import Docker from 'dockerode';
import { AgentError, ErrorCodes, errorMessage, isAgentError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ContainerCreateRequest, ContainerImageUse, ContainerRuntime, EngineImage, PullOptions, RuntimeEvent } from './container-runtime.js';
import type { ObservedContainer } from '../domain/observed-container.js';
import { fromInspect, fromListEntry, toCreateOptions } from './container-mapper.js';
import { logEntries } from './container-logs.js';
import type { LogEntry, LogQuery } from '../domain/log-entry.js';
import { dockerStatusCode, engineMessage } from './docker-errors.js';
import { engineCall, modemDial } from './engine-call.js';
import { engineConnection, type EngineEndpoint, type EngineTls } from './engine-connection.js';
import type { EngineContainerInspect, EngineContainerListEntry } from './engine-types.js';
import { watchContainerEvents } from './event-watcher.js';
import { ImagePuller } from './image-puller.js';
import { Labels } from '../domain/ownership-labels.js';
import { RegistryAuth } from './registry-auth.js';

export interface DockerRuntimeOptions {
  /** Unix socket of the engine; used when `host` is not set. */
  socketPath: string;
  /** A remote engine, e.g. from DOCKER_HOST: tcp://, http://, https://, ssh:// or unix:// (engine-connection.ts). */
  host?: string | undefined;
  /** TLS files for https:// or tcp:// + TLS, read by loadEngineTls. */
  tls?: EngineTls | undefined;
  /** The ssh-agent socket for an ssh:// host; default $SSH_AUTH_SOCK. */
  sshAuthSock?: string | undefined;
  /** Deadline of every Engine API call except stop/wait (see engine-call.ts). */
  apiTimeoutMs: number;
  /** 'ip': reach replicas at their network IP; 'published': at a published host port; 'auto': published iff the engine is not a local unix socket. */
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
 * ContainerRuntime on a Docker Engine through dockerode. Every call goes through engineCall (a
 * deadline, the caller's abort signal, error translation). Stateless apart from the in-flight
 * pulls and the names of networks passed to ensureNetwork (preferred when picking a container's
 * IP); safe to use from many workers at once.
 */
export class DockerRuntime implements ContainerRuntime {
  readonly publishesPorts: boolean;
  /** Where the engine is, for messages and published-port addressing. */
  readonly engine: EngineEndpoint;
  private readonly docker: Docker;
  private readonly logger: Logger;
  private readonly apiTimeoutMs: number;
  private readonly reconnectDelayMs: number;
  private readonly puller: ImagePuller;
  private readonly networks: string[] = [];

  /** Throws CONFIG_INVALID when `host` cannot be reached as written (engine-connection.ts). */
  constructor(options: DockerRuntimeOptions) {
    this.logger = options.logger;
    this.apiTimeoutMs = options.apiTimeoutMs;
    this.reconnectDelayMs = options.eventsReconnectDelayMs ?? 1_000;
    const connection = engineConnection({ socketPath: options.socketPath, host: options.host, tls: options.tls, sshAuthSock: options.sshAuthSock });
    this.engine = connection.endpoint;
    try {
      this.docker = new Docker(connection.dockerOptions);
    } catch (err) {
      // docker-modem reads $DOCKER_CERT_PATH's files itself whenever DOCKER_HOST is set, even when told otherwise.
      throw new AgentError(ErrorCodes.CONFIG_INVALID, `cannot set up the Docker Engine client: ${errorMessage(err)}; fix or unset DOCKER_CERT_PATH`, { cause: err });
    }
    this.publishesPorts = options.addressing === 'published' || (options.addressing === 'auto' && this.engine.transport !== 'unix');
    this.puller = new ImagePuller({
      docker: this.docker,
      engine: this.engine,
      logger: options.logger,
      apiTimeoutMs: options.apiTimeoutMs,
      auth: new RegistryAuth({ logger: options.logger, ...(options.dockerConfigDir === undefined ? {} : { dockerConfigDir: options.dockerConfigDir }) }),
    });
  }

  /** One dockerode call under the API deadline (or `timeoutMs`); `call` gets the abort signal to pass as `abortSignal`. */
  private api<T>(call: string, object: string, fn: (abortSignal: AbortSignal) => Promise<T>, timeoutMs: number = this.apiTimeoutMs): Promise<T> {
    return engineCall(this.engine, { call, object }, timeoutMs, fn);
  }

  async ping(): Promise<void> {
    // dockerode 5's ping takes options at run time; its typings (v4) do not say so.
    const ping = this.docker.ping.bind(this.docker) as (options: { abortSignal: AbortSignal }) => Promise<unknown>;
    await this.api('ping', 'the Docker Engine', (abortSignal) => ping({ abortSignal }));
  }

  async ensureNetwork(name: string): Promise<void> {
    if (!this.networks.includes(name)) this.networks.push(name);
    // The `name` filter matches substrings: compare exactly.
    const existing = await this.api('list networks', `named "${name}"`, (abortSignal) => this.docker.listNetworks({ filters: { name: [name] }, abortSignal }));
    if (existing.some((n) => n.Name === name)) return;
    try {
      await this.api('create network', `"${name}"`, (abortSignal) =>
        this.docker.createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: true, Labels: { [Labels.MANAGED]: 'true' }, abortSignal }),
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

  /**
   * Through the modem, with the name as the only query parameter: dockerode's createContainer
   * also copies the whole body (env values included) into the URL, and drops the engine's Warnings.
   */
  async createContainer(spec: ContainerCreateRequest): Promise<string> {
    const { name, ...body } = toCreateOptions(spec);
    const created = await this.api('create container', `"${spec.name}" from image "${spec.image}"`, (abortSignal) =>
      modemDial<{ Id: string; Warnings?: string[] | null }>(this.docker, {
        path: '/containers/create?',
        method: 'POST',
        options: { _query: { name }, _body: body },
        statusCodes: { 200: true, 201: true, 400: 'bad parameter', 404: 'no such image', 409: 'conflict', 500: 'server error' },
        abortSignal,
      }),
    );
    for (const warning of created.Warnings ?? []) this.logger.warn({ container: spec.name, warning }, 'engine warning on create');
    return created.Id;
  }

  async startContainer(id: string): Promise<void> {
    try {
      await this.api('start container', id, (abortSignal) => this.docker.getContainer(id).start({ abortSignal }));
    } catch (err) {
      if (!isAgentError(err)) throw err;
      if (dockerStatusCode(err.cause) === 304) return; // already running
      if (err.code === ErrorCodes.DOCKER_API || err.code === ErrorCodes.DOCKER_CONFLICT) {
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
      await this.api('stop container', id, (abortSignal) => this.docker.getContainer(id).stop({ t: seconds, abortSignal }), seconds * 1000 + this.apiTimeoutMs);
    } catch (err) {
      if (!isAgentError(err)) throw err;
      if (err.code === ErrorCodes.DOCKER_NOT_FOUND || dockerStatusCode(err.cause) === 304) return; // gone, or already stopped
      throw err;
    }
  }

  async removeContainer(id: string): Promise<void> {
    try {
      await this.api('remove container', id, (abortSignal) => this.docker.getContainer(id).remove({ force: true, v: true, abortSignal }));
    } catch (err) {
      if (!isAgentError(err, ErrorCodes.DOCKER_NOT_FOUND)) throw err;
    }
  }

  async renameContainer(id: string, name: string): Promise<void> {
    await this.api('rename container', `${id} to "${name}"`, (abortSignal) => this.docker.getContainer(id).rename({ name, abortSignal }));
  }

  async inspectContainer(id: string): Promise<ObservedContainer | undefined> {
    try {
      const info = await this.api('inspect container', id, (abortSignal) => this.docker.getContainer(id).inspect({ abortSignal }));
      return fromInspect(info as unknown as EngineContainerInspect, this.networks);
    } catch (err) {
      if (isAgentError(err, ErrorCodes.DOCKER_NOT_FOUND)) return undefined;
      throw err;
    }
  }

  async listContainers(labels: Record<string, string>): Promise<ObservedContainer[]> {
    const entries = await this.api('list containers', `labelled ${labelFilters(labels).join(',')}`, (abortSignal) =>
      this.docker.listContainers({ all: true, filters: { label: labelFilters(labels) }, abortSignal }),
    );
    return entries.map((entry) => fromListEntry(entry as unknown as EngineContainerListEntry, this.networks));
  }

  async logsTail(id: string, lines: number): Promise<string> {
    const raw: unknown = await this.api('read logs of container', id, (abortSignal) =>
      this.docker.getContainer(id).logs({ stdout: true, stderr: true, tail: lines, follow: false, abortSignal }),
    );
    // The agent never creates TTY containers, so the answer is log frames: never valid JSON, which
    // docker-modem would have parsed; a string or object (a TTY container made by hand) is taken as text.
    if (Buffer.isBuffer(raw)) return demultiplexLogs(raw);
    return typeof raw === 'string' ? raw : JSON.stringify(raw);
  }

  async *logStream(id: string, query: LogQuery, signal: AbortSignal): AsyncGenerator<LogEntry> {
    const options = { stdout: true, stderr: true, timestamps: true, tail: query.tail, ...(query.sinceSeconds === undefined ? {} : { since: query.sinceSeconds }) };
    if (!query.follow) {
      const raw: unknown = await this.api('read logs of container', id, (abortSignal) => this.docker.getContainer(id).logs({ ...options, follow: false, abortSignal }));
      yield* logEntries([Buffer.isBuffer(raw) ? raw : Buffer.from(typeof raw === 'string' ? raw : JSON.stringify(raw))]);
      return;
    }
    // A followed log runs until `signal`, not until the API timeout: the call gets the caller's signal.
    const stream = (await this.api('follow logs of container', id, () => this.docker.getContainer(id).logs({ ...options, follow: true, abortSignal: signal }))) as NodeJS.ReadableStream & {
      destroy(): void;
    };
    const stop = (): void => stream.destroy();
    signal.addEventListener('abort', stop, { once: true });
    try {
      yield* logEntries(stream as AsyncIterable<Buffer>);
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      signal.removeEventListener('abort', stop);
      stream.destroy();
    }
  }

  replicaEndpoint(c: ObservedContainer, exposedPort: number): { host: string; port: number } | undefined {
    if (this.publishesPorts) return c.publishedPort === undefined ? undefined : { host: this.engine.publishHost, port: c.publishedPort };
    return c.ipAddress === undefined ? undefined : { host: c.ipAddress, port: exposedPort };
  }

  async dataRoot(): Promise<string> {
    // dockerode 5's info takes options at run time; its typings (v4) do not say so.
    const info = this.docker.info.bind(this.docker) as (options: { abortSignal: AbortSignal }) => Promise<{ DockerRootDir?: string }>;
    const answer = await this.api('read engine info', 'the Docker Engine', (abortSignal) => info({ abortSignal }));
    return answer.DockerRootDir ?? '/var/lib/docker';
  }

  async listImages(): Promise<EngineImage[]> {
    const list = await this.api('list images', 'on the engine', (abortSignal) => this.docker.listImages({ abortSignal }));
    return list.map((i) => ({
      id: i.Id,
      repoTags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
      repoDigests: (i.RepoDigests ?? []).filter((d) => d !== '<none>@<none>'),
      sizeBytes: i.Size ?? 0,
    }));
  }

  async containerImages(): Promise<ContainerImageUse[]> {
    const entries = await this.api('list containers', 'of every owner', (abortSignal) => this.docker.listContainers({ all: true, abortSignal }));
    return entries.map((e) => ({ containerId: e.Id, imageId: e.ImageID }));
  }

  async removeImage(ref: string): Promise<void> {
    await this.api('remove image', `"${ref}"`, (abortSignal) => this.docker.getImage(ref).remove({ force: false, noprune: false, abortSignal }));
  }

  /** See event-watcher.ts: reconnects with `since`, ends when `signal` aborts. */
  watchEvents(labels: Record<string, string>, onEvent: (e: RuntimeEvent) => void, signal: AbortSignal, onError?: (err: Error) => void): void {
    watchContainerEvents({
      docker: this.docker,
      engine: this.engine,
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
