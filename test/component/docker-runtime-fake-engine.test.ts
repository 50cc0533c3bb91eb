import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes, isAgentError } from '../../src/errors.js';
import { createLogger, silentLogger } from '../../src/log.js';
import type { PullProgress, RuntimeEvent } from '../../src/runtime/container-runtime.js';
import { DockerRuntime } from '../../src/runtime/docker-runtime.js';
import { defaultSettings } from '../helpers/container-settings.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * DockerRuntime against a scripted fake engine on a unix socket: the error translation, deadlines
 * and event-stream reconnects that a healthy real engine never exercises.
 */

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function fakeEngine(handler: Handler): Promise<{ socketPath: string; server: Server }> {
  const dir = await mkdtemp(join(tmpdir(), 'fake-engine-'));
  const socketPath = join(dir, 'docker.sock');
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });
  return { socketPath, server };
}

function runtimeOn(socketPath: string, apiTimeoutMs = 2_000): DockerRuntime {
  return new DockerRuntime({ socketPath, apiTimeoutMs, addressing: 'auto', logger: silentLogger(), eventsReconnectDelayMs: 50 });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('DockerRuntime against a fake engine', () => {
  it('no engine at the socket → DOCKER_UNAVAILABLE (retryable)', async () => {
    const err = await rejection(runtimeOn('/nonexistent/docker.sock').ping());
    expect(isAgentError(err, ErrorCodes.DOCKER_UNAVAILABLE)).toBe(true);
    expect((err as { retryable: boolean }).retryable).toBe(true);
    expect((err as Error).message).toContain('ENOENT');
    expect((err as Error).cause).toBeDefined();
  });

  it('an engine that never answers → DOCKER_TIMEOUT after apiTimeoutMs', async () => {
    const { socketPath } = await fakeEngine(() => undefined);
    const started = Date.now();
    const err = await rejection(runtimeOn(socketPath, 300).inspectContainer('abc'));
    expect(isAgentError(err, ErrorCodes.DOCKER_TIMEOUT)).toBe(true);
    expect((err as { retryable: boolean }).retryable).toBe(true);
    expect((err as Error).message).toMatch(/inspect container abc failed: no answer .* within 300 ms/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('stop has no apiTimeoutMs deadline: it waits for the engine beyond it', async () => {
    const { socketPath } = await fakeEngine((req, res) => {
      setTimeout(() => res.writeHead(204).end(), 600);
    });
    await expect(runtimeOn(socketPath, 200).stopContainer('abc', 1_000)).resolves.toBeUndefined();
  });

  it.each<[string, number, unknown, string]>([
    ['409 on create', 409, { message: 'Conflict. The container name "/x" is already in use' }, ErrorCodes.DOCKER_CONFLICT],
    ['500 on create', 500, { message: 'something broke' }, ErrorCodes.DOCKER_API],
    ['404 on create (image)', 404, { message: 'No such image: nope:1' }, ErrorCodes.DOCKER_NOT_FOUND],
  ])('%s → %s with the engine message', async (_name, status, body, code) => {
    const { socketPath } = await fakeEngine((_req, res) => json(res, status, body));
    const err = await rejection(
      runtimeOn(socketPath).createContainer({
        name: 'x',
        image: 'nope:1',
        env: [],
        labels: {},
        binds: [],
        exposedPort: 80,
        network: 'n',
        publishPort: false,
        gpu: { kind: 'none' },
        settings: defaultSettings,
      }),
    );
    expect(isAgentError(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    expect((err as Error).message).toContain('create container "x" from image "nope:1" failed: ');
    expect((err as Error).message).toContain((body as { message: string }).message);
  });

  it('create: only the name in the query, the spec as the JSON body; engine warnings are logged', async () => {
    const seen: Array<{ url: string; body: string }> = [];
    const { socketPath } = await fakeEngine((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', body });
        json(res, 201, { Id: 'c0ffee', Warnings: ['Your kernel does not support swap limit capabilities'] });
      });
    });
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    const runtime = new DockerRuntime({ socketPath, apiTimeoutMs: 2_000, addressing: 'ip', logger });
    const id = await runtime.createContainer({
      name: 'cyberun-web-0',
      image: 'img:1',
      env: ['TOKEN=s3cret'],
      labels: { 'cloud.cyberun.managed': 'true' },
      binds: [],
      exposedPort: 8080,
      network: 'cyberun',
      publishPort: false,
      gpu: { kind: 'none' },
      settings: defaultSettings,
    });
    expect(id).toBe('c0ffee');
    const url = new URL(seen[0]!.url, 'http://engine');
    expect(url.pathname).toBe('/containers/create');
    expect([...url.searchParams.keys()]).toEqual(['name']);
    expect(url.searchParams.get('name')).toBe('cyberun-web-0');
    expect(JSON.parse(seen[0]!.body)).toMatchObject({ Image: 'img:1', Env: ['TOKEN=s3cret', 'NVIDIA_VISIBLE_DEVICES=void', 'NVIDIA_DRIVER_CAPABILITIES=compute,utility'], HostConfig: { NetworkMode: 'cyberun' } });
    expect(lines.map((l) => JSON.parse(l) as { msg: string; warning: string })).toEqual([
      expect.objectContaining({ msg: 'engine warning on create', warning: 'Your kernel does not support swap limit capabilities' }),
    ]);
  });

  it('an answer whose body stalls after the headers → DOCKER_TIMEOUT, and nothing is left throwing', async () => {
    const { socketPath } = await fakeEngine((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('[{"Id":');
    });
    const err = await rejection(runtimeOn(socketPath, 300).listContainers({ a: '1' }));
    expect(isAgentError(err, ErrorCodes.DOCKER_TIMEOUT)).toBe(true);
    expect((err as Error).message).toMatch(/^list containers labelled a=1 failed: no answer from the Docker Engine at unix:\/\/.* within 300 ms$/);
  });

  it('image inspect keeps its deadline (dockerode drops the signal there; the adapter does not)', async () => {
    const { socketPath } = await fakeEngine(() => undefined);
    const err = await rejection(runtimeOn(socketPath, 300).hasImage('img:1'));
    expect(isAgentError(err, ErrorCodes.DOCKER_TIMEOUT)).toBe(true);
    expect((err as Error).message).toMatch(/^inspect image img:1 failed: no answer .* within 300 ms$/);
  });

  it('hasImage: one inspect; 200 → true, 404 → false', async () => {
    const urls: string[] = [];
    const { socketPath } = await fakeEngine((req, res) => {
      urls.push(`${req.method} ${req.url}`);
      if (req.url?.includes('present')) json(res, 200, { Id: 'sha256:1' });
      else json(res, 404, { message: 'No such image: absent:1' });
    });
    const runtime = runtimeOn(socketPath);
    expect(await runtime.hasImage('present:1')).toBe(true);
    expect(await runtime.hasImage('absent:1')).toBe(false);
    expect(urls).toEqual(['GET /images/present:1/json', 'GET /images/absent:1/json']);
  });

  it('https:// to an engine that speaks plain HTTP → DOCKER_TLS saying it does not answer in TLS', async () => {
    const server = createServer((_req, res) => json(res, 200, []));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const { port } = server.address() as AddressInfo;
    const runtime = new DockerRuntime({ socketPath: '/nonexistent/docker.sock', host: `https://127.0.0.1:${port}`, apiTimeoutMs: 2_000, addressing: 'auto', logger: silentLogger() });
    const err = await rejection(runtime.ping());
    expect(isAgentError(err, ErrorCodes.DOCKER_TLS)).toBe(true);
    expect((err as Error).message).toMatch(new RegExp(`^ping the Docker Engine failed: TLS handshake with the Docker Engine at 127\\.0\\.0\\.1:${port} failed \\(.+\\): the engine does not answer in TLS`));
  });

  it('start: engine 500 → CONTAINER_START_FAILED with the reason; 304 (already running) is fine; 404 stays NOT_FOUND', async () => {
    const { socketPath } = await fakeEngine((req, res) => {
      if (req.url?.includes('/containers/bad/')) json(res, 500, { message: 'could not select device driver "nvidia" with capabilities: [[gpu]]' });
      else if (req.url?.includes('/containers/up/')) res.writeHead(304).end();
      else json(res, 404, { message: 'No such container: gone' });
    });
    const runtime = runtimeOn(socketPath);
    const err = await rejection(runtime.startContainer('bad'));
    expect(isAgentError(err, ErrorCodes.CONTAINER_START_FAILED)).toBe(true);
    expect((err as Error).message).toBe('start container bad failed: could not select device driver "nvidia" with capabilities: [[gpu]]');
    await expect(runtime.startContainer('up')).resolves.toBeUndefined();
    expect(isAgentError(await rejection(runtime.startContainer('gone')), ErrorCodes.DOCKER_NOT_FOUND)).toBe(true);
  });

  it('inspect of a missing container is undefined; remove and stop of one resolve', async () => {
    const { socketPath } = await fakeEngine((_req, res) => json(res, 404, { message: 'No such container: gone' }));
    const runtime = runtimeOn(socketPath);
    expect(await runtime.inspectContainer('gone')).toBeUndefined();
    await expect(runtime.removeContainer('gone')).resolves.toBeUndefined();
    await expect(runtime.stopContainer('gone', 1_000)).resolves.toBeUndefined();
  });

  it('stop of a container that is already stopped (304) resolves', async () => {
    const { socketPath } = await fakeEngine((_req, res) => res.writeHead(304).end());
    await expect(runtimeOn(socketPath).stopContainer('stopped', 1_000)).resolves.toBeUndefined();
  });

  it('watchEvents: filters by labels, reconnects after a lost stream with since = last event + 1 ns', async () => {
    const queries: URLSearchParams[] = [];
    const { socketPath } = await fakeEngine((req, res) => {
      const url = new URL(req.url ?? '/', 'http://engine');
      if (!url.pathname.endsWith('/events')) return json(res, 404, { message: 'no' });
      queries.push(url.searchParams);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      if (queries.length === 1) {
        // One event, split across writes, then the engine drops the stream.
        const line = JSON.stringify({
          Type: 'container',
          Action: 'health_status: healthy',
          id: 'c1',
          Actor: { ID: 'c1', Attributes: { 'cloud.cyberun.managed': 'true', name: 'svc-0', image: 'img' } },
          time: 1_790_000_000,
        }).replace(/}$/, ',"timeNano":1790000000123456789}');
        res.write(line.slice(0, 20));
        setTimeout(() => res.end(line.slice(20) + '\n'), 20);
      } else {
        res.write(JSON.stringify({ Type: 'container', Action: 'die', id: 'c2', Actor: { ID: 'c2', Attributes: { exitCode: '3' } }, time: 1_790_000_001, timeNano: 1_790_000_001_000_000_000 }) + '\n');
      }
    });
    const events: RuntimeEvent[] = [];
    const errors: Error[] = [];
    const controller = new AbortController();
    runtimeOn(socketPath).watchEvents({ 'cloud.cyberun.managed': 'true', 'cloud.cyberun.service-id': '' }, (e) => events.push(e), controller.signal, (e) => errors.push(e));
    await waitFor('two events', () => events.length >= 2, 5_000, 20);
    controller.abort();

    expect(events).toEqual([
      { action: 'health_status', containerId: 'c1', labels: { 'cloud.cyberun.managed': 'true' }, time: 1_790_000_000_123 },
      { action: 'die', containerId: 'c2', labels: {}, time: 1_790_000_001_000 },
    ]);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(queries[0]?.get('filters') ?? '{}')).toEqual({ type: ['container'], label: ['cloud.cyberun.managed=true', 'cloud.cyberun.service-id'] });
    expect(queries[0]?.get('since')).toBeNull();
    expect(queries[1]?.get('since')).toBe('1790000000.123456790');
  });

  it('watchEvents stops for good when the signal aborts', async () => {
    let connections = 0;
    const { socketPath } = await fakeEngine((_req, res) => {
      connections += 1;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end();
    });
    const controller = new AbortController();
    runtimeOn(socketPath).watchEvents({}, () => undefined, controller.signal);
    await waitFor('a reconnect while not aborted', () => connections > 1, 5_000, 10);
    controller.abort();
    const seen = connections;
    // After the abort nothing can be waited for: no new connection within a reconnect delay's time.
    await new Promise((r) => setTimeout(r, 200));
    expect(connections).toBe(seen);
  });

  it('tcp host: requests go to host:port, with Docker query conventions; ping accepts a text answer', async () => {
    const seen: Array<{ method: string; url: string }> = [];
    const server = createServer((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '' });
      if (req.url === '/_ping') res.writeHead(200, { 'Content-Type': 'text/plain' }).end('OK');
      else json(res, 200, []);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const { port } = server.address() as AddressInfo;
    const runtime = new DockerRuntime({ socketPath: '/nonexistent/docker.sock', host: `tcp://127.0.0.1:${port}`, apiTimeoutMs: 2_000, addressing: 'auto', logger: silentLogger() });
    await runtime.ping();
    expect(await runtime.listContainers({ a: '1', b: '' })).toEqual([]);
    expect(runtime.publishesPorts).toBe(true);
    expect(seen[0]).toEqual({ method: 'GET', url: '/_ping' });
    const list = new URL(seen[1]!.url, 'http://engine');
    expect(list.pathname).toBe('/containers/json');
    expect(list.searchParams.get('all')).toBe('true');
    expect(JSON.parse(list.searchParams.get('filters') ?? '')).toEqual({ label: ['a=1', 'b'] });
  });

  it('logsTail: demultiplexes the frames, and returns log lines that happen to be JSON as text', async () => {
    const frame = (stream: number, text: string): Buffer => {
      const header = Buffer.alloc(8);
      header[0] = stream;
      header.writeUInt32BE(Buffer.byteLength(text), 4);
      return Buffer.concat([header, Buffer.from(text)]);
    };
    let url = '';
    const { socketPath } = await fakeEngine((req, res) => {
      url = req.url ?? '';
      res.writeHead(200, { 'Content-Type': 'application/vnd.docker.raw-stream' });
      res.end(Buffer.concat([frame(1, '{"level":"info"}\n'), frame(2, 'boom\n')]));
    });
    expect(await runtimeOn(socketPath).logsTail('abc', 2)).toBe('{"level":"info"}\nboom\n');
    expect(new URL(url, 'http://engine').searchParams.get('tail')).toBe('2');
  });

  describe('pulls', () => {
    const line = (o: unknown): string => JSON.stringify(o) + '\r\n';

    it('an error line in the progress stream → IMAGE_PULL_FAILED with the registry message; progress came first', async () => {
      const { socketPath } = await fakeEngine((req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(line({ status: 'Pulling from acme/app', id: '1' }));
        res.write(line({ status: 'Pulling fs layer', id: 'l1' }));
        res.write(line({ status: 'Downloading', id: 'l1', progressDetail: { current: 10, total: 100 } }));
        res.end(line({ errorDetail: { message: 'unauthorized: authentication required' }, error: 'unauthorized: authentication required' }));
      });
      const progress: PullProgress[] = [];
      const err = await rejection(runtimeOn(socketPath).pullImage('acme/app:1', { stallTimeoutMs: 5_000, totalTimeoutMs: 5_000, onProgress: (p) => progress.push(p) }));
      expect(isAgentError(err, ErrorCodes.IMAGE_PULL_FAILED)).toBe(true);
      expect((err as Error).message).toBe('pull of image "acme/app:1" failed: unauthorized: authentication required');
      expect(progress.at(-1)).toEqual({ currentBytes: 10, totalBytes: 100, layers: 1, layersDone: 0 });
    });

    it('a layer that does not fit on the engine’s disk → IMAGE_PULL_NO_SPACE, retryable, saying so', async () => {
      // The engine's words as in https://github.com/NVIDIA-NeMo/Speech/issues/1029
      const said = 'failed to register layer: Error processing tar file(exit status 1): write /opt/conda/lib/python3.6/site-packages/torch/lib/libtorch.so: no space left on device';
      const { socketPath } = await fakeEngine((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(line({ errorDetail: { message: said }, error: said }));
      });
      const err = await rejection(runtimeOn(socketPath).pullImage('nvcr.io/nvidia/nemo:v0.11', { stallTimeoutMs: 5_000, totalTimeoutMs: 5_000 }));
      expect(isAgentError(err, ErrorCodes.IMAGE_PULL_NO_SPACE)).toBe(true);
      expect((err as { retryable: boolean }).retryable).toBe(true);
      expect((err as Error).message).toBe(`pull of image "nvcr.io/nvidia/nemo:v0.11" failed: the Docker Engine's disk is full (${said}); the agent removes unused images it pulled (image_gc) and tries again`);
    });

    it('an error answer to the pull request → IMAGE_PULL_FAILED with the engine message and status', async () => {
      const { socketPath } = await fakeEngine((_req, res) => json(res, 404, { message: 'pull access denied for acme/nope, repository does not exist' }));
      const err = await rejection(runtimeOn(socketPath).pullImage('acme/nope:1', { stallTimeoutMs: 5_000, totalTimeoutMs: 5_000 }));
      expect(isAgentError(err, ErrorCodes.IMAGE_PULL_FAILED)).toBe(true);
      expect((err as Error).message).toBe('pull of image "acme/nope:1" failed: pull access denied for acme/nope, repository does not exist');
      expect((err as { details: unknown }).details).toEqual({ image: 'acme/nope:1', statusCode: 404 });
    });

    it('sends registry credentials from the docker config as X-Registry-Auth, and asks for one tag', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'docker-config-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { 'ghcr.io': { auth: Buffer.from('u:p').toString('base64') } } }));
      const seen: Array<{ url: string; auth: string | undefined }> = [];
      const { socketPath } = await fakeEngine((req, res) => {
        seen.push({ url: req.url ?? '', auth: req.headers['x-registry-auth'] as string | undefined });
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(line({ status: 'Status: Image is up to date for ghcr.io/acme/app:2' }));
      });
      const runtime = new DockerRuntime({ socketPath, apiTimeoutMs: 2_000, addressing: 'ip', logger: silentLogger(), dockerConfigDir: dir });
      await runtime.pullImage('ghcr.io/acme/app:2', { stallTimeoutMs: 5_000, totalTimeoutMs: 5_000 });
      expect(seen).toHaveLength(1);
      const url = new URL(seen[0]!.url, 'http://engine');
      expect(url.pathname).toMatch(/\/images\/create$/);
      expect(url.searchParams.get('fromImage')).toBe('ghcr.io/acme/app');
      expect(url.searchParams.get('tag')).toBe('2');
      const auth = JSON.parse(Buffer.from(seen[0]!.auth!.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8')) as Record<string, string>;
      expect(auth).toEqual({ username: 'u', password: 'p', serveraddress: 'ghcr.io' });
    });

    it('concurrent pulls share one engine pull; a caller that aborts leaves alone, the other still completes', async () => {
      let requests = 0;
      let finish: (() => void) | undefined;
      const { socketPath } = await fakeEngine((req, res) => {
        requests += 1;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(line({ status: 'Pulling fs layer', id: 'l1' }));
        finish = () => res.end(line({ status: 'Pull complete', id: 'l1' }));
      });
      const runtime = runtimeOn(socketPath);
      const leaving = new AbortController();
      const first = runtime.pullImage('acme/app:3', { stallTimeoutMs: 5_000, totalTimeoutMs: 5_000, signal: leaving.signal });
      const secondProgress: PullProgress[] = [];
      const second = runtime.pullImage('acme/app:3', { stallTimeoutMs: 5_000, totalTimeoutMs: 5_000, onProgress: (p) => secondProgress.push(p) });
      const finishPull = await waitFor('the engine answering the pull', () => finish, 5_000, 10);
      leaving.abort();
      expect(isAgentError(await rejection(first), ErrorCodes.ABORTED)).toBe(true);
      finishPull();
      await expect(second).resolves.toBeUndefined();
      expect(requests).toBe(1);
      expect(secondProgress.at(-1)).toMatchObject({ layers: 1, layersDone: 1 });
    });

    it('the last caller leaving aborts the engine pull', async () => {
      let closed = false;
      const { socketPath } = await fakeEngine((req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(line({ status: 'Pulling fs layer', id: 'l1' }));
        res.on('close', () => {
          closed = true;
        });
      });
      const controller = new AbortController();
      let asked = false;
      const pull = runtimeOn(socketPath).pullImage('acme/app:4', { stallTimeoutMs: 5_000, totalTimeoutMs: 5_000, signal: controller.signal, onProgress: () => (asked = true) });
      await waitFor('the pull under way', () => asked, 5_000, 10);
      controller.abort();
      expect(isAgentError(await rejection(pull), ErrorCodes.ABORTED)).toBe(true);
      await waitFor('the engine seeing the pull aborted', () => closed, 2_000, 10);
    });
  });
});
