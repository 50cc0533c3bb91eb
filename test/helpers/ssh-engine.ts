import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './agent-harness.js';
import { waitFor } from './wait-for.js';

/**
 * The local Docker Engine reached over ssh, as `DOCKER_HOST=ssh://user@host` reaches one: an sshd
 * on 127.0.0.1:<port> with throwaway keys (made at test time with ssh-keygen), and an ssh-agent
 * holding the client key. The engine side is this host's docker CLI (`docker system dial-stdio`,
 * run by sshd for the test's user) in front of /var/run/docker.sock.
 *
 * openssh-server and openssh-client are Debian packages that .ci/run installs; `requireSshd`
 * skips loudly without them, and fails when CI is set (like requireDocker).
 */

const exec = promisify(execFile);
const SSHD = '/usr/sbin/sshd';

export interface SshEngine {
  /** `ssh://<user>@127.0.0.1:<port>` */
  host: string;
  /** `ssh://<user>@127.0.0.1:<port>` as the runtime names it in messages. */
  display: string;
  /** An ssh-agent holding the key sshd accepts. */
  authSock: string;
  /** An ssh-agent holding a key sshd does not accept. */
  strangerAuthSock: string;
  stop(): Promise<void>;
}

async function found(program: string): Promise<boolean> {
  try {
    if (program.startsWith('/')) await access(program);
    else await exec('sh', ['-c', `command -v ${program}`], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

export async function requireSshd(suite: string): Promise<boolean> {
  const missing: string[] = [];
  for (const program of [SSHD, 'ssh-keygen', 'ssh-agent', 'ssh-add', 'docker']) if (!(await found(program))) missing.push(program);
  if (missing.length === 0) return true;
  const reason = `${missing.join(', ')} not found (apt-get install openssh-server openssh-client)`;
  if (process.env['CI'] !== undefined && process.env['CI'] !== '' && process.env['CI'] !== 'false') {
    throw new Error(`${suite}: ${reason}, and CI is set: refusing to skip. .ci/run installs them.`);
  }
  const bar = '!'.repeat(78);
  process.stderr.write(`\n${bar}\n!! SKIPPING ${suite}: ${reason}.\n!! With CI set this fails instead.\n${bar}\n\n`);
  return false;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/** An ssh-agent in the foreground on `sock`, holding `key`. */
async function startAgent(sock: string, key: string): Promise<ChildProcess> {
  const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  await waitFor(`ssh-agent at ${sock}`, () => access(sock).then(() => true), 10_000, 50);
  await exec('ssh-add', [key], { env: { ...process.env, SSH_AUTH_SOCK: sock }, timeout: 10_000 });
  return agent;
}

export async function startSshEngine(): Promise<SshEngine> {
  const dir = await tempDir('ssh-engine');
  const p = (f: string) => path.join(dir, f);
  for (const key of ['host_key', 'client_key', 'stranger_key']) await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', p(key)], { timeout: 30_000 });
  await exec('cp', [p('client_key.pub'), p('authorized_keys')]);
  // sshd refuses to start without its privilege separation directory.
  await mkdir('/run/sshd', { recursive: true });
  const user = os.userInfo().username;
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.all(children.map(exited));
  };
  try {
    children.push(await startAgent(p('agent.sock'), p('client_key')));
    children.push(await startAgent(p('stranger.sock'), p('stranger_key')));
    const port = await freePort();
    await writeFile(
      p('sshd_config'),
      [
        'ListenAddress 127.0.0.1',
        `Port ${port}`,
        `HostKey ${p('host_key')}`,
        `PidFile ${p('sshd.pid')}`,
        `AuthorizedKeysFile ${p('authorized_keys')}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        '',
      ].join('\n'),
    );
    const sshd = spawn(SSHD, ['-D', '-e', '-f', p('sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(sshd);
    let stderr = '';
    sshd.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-4_000);
    });
    const state = await waitFor(`sshd on 127.0.0.1:${port}`, async () => (sshd.exitCode !== null ? 'exited' : (await accepts(port)) ? 'listening' : undefined), 10_000, 50);
    if (state !== 'listening') throw new Error(`sshd did not start: ${stderr.trim()}`);
    return {
      host: `ssh://${user}@127.0.0.1:${port}`,
      display: `ssh://${user}@127.0.0.1:${port}`,
      authSock: p('agent.sock'),
      strangerAuthSock: p('stranger.sock'),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
