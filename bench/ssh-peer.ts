import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../test/helpers/free-port.js';

const run = promisify(execFile);

/**
 * The proxy benchmark's peer: OpenSSH port forwarding (`ssh -L`) to the same replica the tunnel
 * reaches. Like the tunnel it is two processes (ssh client, sshd) and one multiplexed, flow
 * controlled connection between them (every byte encrypted, no HTTP parsing). sshd listens on
 * loopback only, with throwaway keys made for this run, and is gone when `stop` returns.
 */
export interface SshPeer {
  /** http://127.0.0.1:<forwarded port> */
  url: string;
  /** ssh, sshd and the children sshd forked for the ssh connection (privilege separation): the peer's CPU time. */
  cpuPids(): Promise<number[]>;
  stop(): Promise<void>;
}

/** Installs openssh from Debian packages when sshd or ssh is missing (the bench runs as root). */
async function ensureOpenSsh(): Promise<void> {
  if (existsSync('/usr/sbin/sshd') && existsSync('/usr/bin/ssh')) return;
  process.stdout.write('  installing openssh-server and openssh-client (apt-get)…\n');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-q'], { env, maxBuffer: 64 * 1024 * 1024 });
  await run('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'openssh-server', 'openssh-client'], { env, maxBuffer: 64 * 1024 * 1024 });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port, rejects after `ms`. */
async function waitForPort(port: number, what: string, child: ChildProcess, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Children of a pid (from /proc/<pid>/task/<pid>/children). */
async function childPids(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(' ').filter(Boolean).map(Number);
}

/** sshd on loopback plus `ssh -N -L 127.0.0.1:<port>:<target>` through it. */
export async function startSshPeer(target: string): Promise<SshPeer> {
  await ensureOpenSsh();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cyberun-bench-ssh-'));
  const key = path.join(dir, 'id');
  const hostKey = path.join(dir, 'host');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  await writeFile(path.join(dir, 'authorized_keys'), await readFile(`${key}.pub`));
  await mkdir('/run/sshd', { recursive: true });
  const sshdPort = await freePort();
  const config = [
    `ListenAddress 127.0.0.1`,
    `Port ${sshdPort}`,
    `HostKey ${hostKey}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'StrictModes no',
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    'AllowTcpForwarding yes',
    'LogLevel ERROR',
  ].join('\n');
  await writeFile(path.join(dir, 'sshd_config'), `${config}\n`);
  // -D: stays in the foreground (our child), -e: log to stderr.
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const stopChild = async (c: ChildProcess): Promise<void> => {
    if (c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGTERM');
    await new Promise((r) => c.once('exit', r));
  };
  const localPort = await freePort();
  const ssh = spawn(
    '/usr/bin/ssh',
    ['-N', '-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${path.join(dir, 'known_hosts')}`, '-o', 'ExitOnForwardFailure=yes', '-o', 'LogLevel=ERROR',
      // sshd may not listen yet: ssh retries once a second (a probe of ours would make sshd log a failed kex).
      '-o', 'ConnectionAttempts=10',
      '-i', key, '-p', String(sshdPort), '-L', `127.0.0.1:${localPort}:${target}`, `${os.userInfo().username}@127.0.0.1`],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const stop = async (): Promise<void> => {
    await stopChild(ssh);
    if (sshd.exitCode !== null) process.stdout.write(`  note: sshd had exited with ${sshd.exitCode}\n`);
    await stopChild(sshd);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(localPort, 'ssh -L', ssh, 15_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `http://127.0.0.1:${localPort}`,
    // sshd forks a child per connection, which forks the privilege-separated one that does the work.
    async cpuPids() {
      const kids = await childPids(sshd.pid ?? 0);
      const grandkids = (await Promise.all(kids.map(childPids))).flat();
      return [ssh.pid ?? 0, ...kids, ...grandkids];
    },
    stop,
  };
}
