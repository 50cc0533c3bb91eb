import { execFile } from 'node:child_process';
import { cp, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { engineCall, TEST_RUN_LABEL } from './docker.js';
import { repoPath } from './repo-root.js';
import { waitFor } from './wait-for.js';

const run = promisify(execFile);

/** Built by .ci/build-systemd-image.sh (Debian bookworm, systemd 252 as PID 1, the host's node + npm). */
export const SYSTEMD_IMAGE = process.env['SYSTEMD_TEST_IMAGE'] ?? 'cyberun-test/systemd:12';

/** True when the image exists; otherwise throws under CI, else prints a loud notice (the caller skips). */
export async function requireSystemdImage(suite: string): Promise<boolean> {
  const answer = await engineCall('GET', `/images/${SYSTEMD_IMAGE}/json`).catch(() => ({ status: 0 }));
  if (answer.status === 200) return true;
  const reason = `the image ${SYSTEMD_IMAGE} is missing; build it with "sh .ci/build-systemd-image.sh" (root, a Debian mirror)`;
  if (process.env['CI'] !== undefined && process.env['CI'] !== '' && process.env['CI'] !== 'false') {
    throw new Error(`${suite}: ${reason}, and CI is set: refusing to skip (.ci/run builds it).`);
  }
  const bar = '!'.repeat(78);
  process.stderr.write(`\n${bar}\n!! SKIPPING ${suite}: ${reason}.\n!! With CI set this fails instead.\n${bar}\n\n`);
  return false;
}

export interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

/** A systemd host in a container: PID 1 systemd, the host's network and Docker socket. */
export class SystemdHost {
  private constructor(readonly name: string) {}

  /** Starts the container with the flags of TEST-ENVIRONMENT.md and waits for `is-system-running`. */
  static async start(name: string, runId: string): Promise<SystemdHost> {
    await run('docker', [
      'run', '-d', '--name', name, '--label', `${TEST_RUN_LABEL}=${runId}`,
      // The host's network: the agent dials the gateway on the host's loopback, as on a real host.
      '--network', 'host', '--hostname', name,
      '--cap-add=ALL', '--cap-drop=SYS_RESOURCE', '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined',
      '--cgroupns=host', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw', '--tmpfs', '/run', '--tmpfs', '/run/lock', '-e', 'container=docker',
      '-v', '/var/run/docker.sock:/var/run/docker.sock',
      SYSTEMD_IMAGE,
    ]);
    const host = new SystemdHost(name);
    // Until PID 1 has its bus up, systemctl answers "Failed to connect to bus".
    let last: Exec | undefined;
    await waitFor(`systemd running in ${name}`, async () => {
      last = await host.sh('systemctl is-system-running --wait');
      return ['running', 'degraded'].includes(last.stdout.trim());
    }, 60_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}: ${last?.stdout ?? ''}${last?.stderr ?? ''}`);
    });
    return host;
  }

  /** `bash -c script` as root inside; never throws on a non-zero exit. */
  async sh(script: string, timeoutMs = 200_000): Promise<Exec> {
    try {
      const { stdout, stderr } = await run('docker', ['exec', this.name, 'bash', '-c', script], { timeout: timeoutMs, maxBuffer: 64 * 1024 ** 2 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
    }
  }

  /** Like sh, but throws with the output on a non-zero exit. */
  async ok(script: string, timeoutMs?: number): Promise<string> {
    const r = await this.sh(script, timeoutMs);
    if (r.code !== 0) throw new Error(`in ${this.name}: ${script}\nexit ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  async copyIn(hostPath: string, dest: string): Promise<void> {
    await run('docker', ['cp', hostPath, `${this.name}:${dest}`]);
  }

  /** One property of a unit (`systemctl show -p NAME --value`). */
  async prop(unit: string, name: string): Promise<string> {
    return (await this.ok(`systemctl show -p ${name} --value ${unit}`)).trim();
  }

  async remove(): Promise<void> {
    await run('docker', ['rm', '-f', '-v', this.name]).catch(() => undefined);
  }
}

/**
 * `npm pack` of this checkout, and an npm cache that installs it without a registry: the host's
 * cache seeded in, then one install on the host (which fetches only what the cache lacks: the
 * packuments a tarball install resolves). The host inside the container runs with `--offline`.
 */
export async function packWithCache(workDir: string): Promise<{ tarball: string; cache: string }> {
  const packDir = path.join(workDir, 'pack');
  const cache = path.join(workDir, 'npm-cache');
  await mkdir(packDir, { recursive: true });
  await run('npm', ['pack', '--pack-destination', packDir], { cwd: repoPath(), timeout: 120_000 });
  const tgz = (await readdir(packDir)).find((f) => f.endsWith('.tgz'));
  if (tgz === undefined) throw new Error(`npm pack wrote no tarball into ${packDir}`);
  const tarball = path.join(packDir, tgz);
  const hostCache = (await run('npm', ['config', 'get', 'cache'])).stdout.trim();
  await cp(path.join(hostCache, '_cacache'), path.join(cache, '_cacache'), { recursive: true }).catch(() => undefined);
  await run('npm', ['install', '-g', '--prefix', path.join(workDir, 'prefix'), '--cache', cache, '--prefer-offline', '--no-audit', '--no-fund', tarball], { timeout: 300_000 });
  return { tarball, cache };
}
