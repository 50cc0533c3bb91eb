import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './temp-dirs.js';

const exec = promisify(execFile);

/** Debian's `docker-registry` (distribution 2.8): the real registry the pull tests stop and start. */
export const REGISTRY_BIN = '/usr/bin/docker-registry';

/**
 * Whether the real registry can run here. Without it the caller skips loudly, or fails under CI
 * (.ci/run installs the package).
 */
export function registryAvailable(): boolean {
  return existsSync(REGISTRY_BIN);
}

/**
 * Whether a suite that needs the real registry can run: with an engine but no docker-registry it
 * skips with a loud notice, or throws under CI (.ci/run installs the package).
 */
export function requireRegistry(docker: boolean, suite: string): boolean {
  const available = registryAvailable();
  if (docker && !available) {
    if (process.env['CI']) throw new Error(`${suite}: docker-registry is not installed and CI is set (.ci/run installs it)`);
    process.stderr.write(`\n!! SKIPPING ${suite}: docker-registry is not installed (apt-get install docker-registry)\n\n`);
  }
  return available;
}

export interface LocalRegistry {
  /** `127.0.0.1:<port>`: Docker treats 127.0.0.0/8 registries as insecure, so plain HTTP works. */
  host: string;
  /** Tags a local image into the registry and pushes it; returns the reference to pull. */
  push(localImage: string, repository: string, tag?: string): Promise<string>;
  /** Stops the registry process (a real outage: connections are refused). */
  stop(): Promise<void>;
  /** Starts it again on the same port and storage. */
  start(): Promise<void>;
  /** Lines of the registry's access log that name `fragment` (e.g. a manifest path). */
  requestsFor(fragment: string): string[];
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Starts `docker-registry serve` on loopback with storage in a temp dir; resolves once it answers. */
export async function startLocalRegistry(): Promise<LocalRegistry> {
  const dir = await tempDir('registry');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = path.join(dir, 'config.yml');
  await writeFile(
    config,
    ['version: 0.1', 'log:', '  level: info', '  accesslog:', '    disabled: false', 'storage:', '  filesystem:', `    rootdirectory: ${path.join(dir, 'data')}`, '  delete:', '    enabled: true', 'http:', `  addr: ${host}`, ''].join('\n'),
  );
  let child: ChildProcess | undefined;
  let log = '';
  const start = async (): Promise<void> => {
    child = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (d: Buffer): void => {
      log += d.toString();
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1_000) });
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${host} within 15 s:\n${log.slice(-2_000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (c.exitCode === null) c.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    host,
    async push(localImage, repository, tag = '1') {
      const ref = `${host}/${repository}:${tag}`;
      await exec('docker', ['tag', localImage, ref]);
      await exec('docker', ['push', ref], { timeout: 120_000 });
      // Only the registry holds it now: a pull must fetch it.
      await exec('docker', ['rmi', ref]);
      return ref;
    },
    stop,
    start,
    requestsFor: (fragment) => log.split('\n').filter((l) => l.includes(fragment)),
    async close() {
      await stop();
      await removePulledImages(host);
    },
  };
}

/**
 * Removes the engine's references to images pulled from `host` (a registry, or a relay in front
 * of one): its port is this run's own, so nothing else carries the prefix. An image a container
 * still uses stays (no force): call it after the suite's sweep.
 */
export async function removePulledImages(host: string): Promise<void> {
  const { stdout } = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
  const refs = stdout.split('\n').filter((ref) => ref.startsWith(`${host}/`) && !ref.endsWith(':<none>'));
  if (refs.length > 0) await exec('docker', ['image', 'rm', ...refs]).catch(() => undefined);
}
