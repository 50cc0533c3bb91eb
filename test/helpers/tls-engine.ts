import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { DOCKER_SOCKET } from './docker.js';
import { tempDir } from './agent-harness.js';
import { waitFor } from './wait-for.js';

/**
 * A TLS-protected tcp:// Docker Engine for tests: stunnel4 on 127.0.0.1:<port> in front of the
 * local engine's unix socket, requiring client certificates (`verify = 2`). Certificates are made
 * at test time with the `openssl` CLI (valid 1 day) and laid out as the docker CLI expects them
 * under DOCKER_CERT_PATH: `ca.pem`, `cert.pem`, `key.pem`.
 *
 * stunnel4 is a Debian package that .ci/run installs; `requireStunnel` skips loudly without it,
 * and fails when CI is set (like requireDocker).
 */

const exec = promisify(execFile);
const STUNNEL = 'stunnel4';

export interface TlsEngine {
  /** `tcp://127.0.0.1:<port>` */
  host: string;
  /** `127.0.0.1:<port>` */
  address: string;
  /** The right files: ca.pem (the CA that signed stunnel's certificate), cert.pem, key.pem (a client certificate stunnel accepts). */
  certDir: string;
  /** Same client certificate, but a ca.pem of another CA: the engine's certificate does not verify. */
  wrongCaDir: string;
  /** The right ca.pem, but a client certificate from another CA: stunnel refuses it. */
  untrustedClientDir: string;
  stop(): Promise<void>;
}

export async function requireStunnel(suite: string): Promise<boolean> {
  try {
    await exec(STUNNEL, ['-version'], { timeout: 10_000 });
    return true;
  } catch (err) {
    // `stunnel4 -version` prints to stderr and exits non-zero on some builds: only ENOENT means missing.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return true;
  }
  const reason = `${STUNNEL} is not installed (apt-get install stunnel4)`;
  if (process.env['CI'] !== undefined && process.env['CI'] !== '' && process.env['CI'] !== 'false') {
    throw new Error(`${suite}: ${reason}, and CI is set: refusing to skip. .ci/run installs it.`);
  }
  const bar = '!'.repeat(78);
  process.stderr.write(`\n${bar}\n!! SKIPPING ${suite}: ${reason}.\n!! With CI set this fails instead.\n${bar}\n\n`);
  return false;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await exec('openssl', args, { cwd, timeout: 30_000 });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed CA `<name>.pem` / `<name>.key` in `dir`. */
async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '1', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

/** A certificate `<name>.pem` / `<name>.key` signed by CA `<ca>`, with the given X.509 extensions. */
async function makeCert(dir: string, name: string, ca: string, extensions: string): Promise<void> {
  await openssl(['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
  await writeFile(path.join(dir, `${name}.ext`), extensions);
  await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`], dir);
}

/** A DOCKER_CERT_PATH-style directory holding ca.pem, cert.pem and key.pem. */
async function certPath(root: string, name: string, files: { ca: string; cert: string; key: string }): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir);
  await copyFile(files.ca, path.join(dir, 'ca.pem'));
  await copyFile(files.cert, path.join(dir, 'cert.pem'));
  await copyFile(files.key, path.join(dir, 'key.pem'));
  return dir;
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

export async function startTlsEngine(): Promise<TlsEngine> {
  const root = await tempDir('tls-engine');
  const pki = path.join(root, 'pki');
  await mkdir(pki);
  await makeCa(pki, 'engine-ca');
  await makeCa(pki, 'other-ca');
  await makeCert(pki, 'server', 'engine-ca', 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  await makeCert(pki, 'client', 'engine-ca', 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
  await makeCert(pki, 'stranger', 'other-ca', 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
  const p = (f: string) => path.join(pki, f);
  const certDir = await certPath(root, 'certs', { ca: p('engine-ca.pem'), cert: p('client.pem'), key: p('client.key') });
  const wrongCaDir = await certPath(root, 'wrong-ca', { ca: p('other-ca.pem'), cert: p('client.pem'), key: p('client.key') });
  const untrustedClientDir = await certPath(root, 'untrusted-client', { ca: p('engine-ca.pem'), cert: p('stranger.pem'), key: p('stranger.key') });

  // Another process may take the port between freePort() and stunnel's bind: try a few.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const conf = path.join(root, `stunnel-${port}.conf`);
    await writeFile(
      conf,
      [
        'foreground = yes',
        'pid =',
        'debug = warning',
        '[docker]',
        `accept = 127.0.0.1:${port}`,
        `connect = ${DOCKER_SOCKET}`,
        `cert = ${p('server.pem')}`,
        `key = ${p('server.key')}`,
        `CAfile = ${p('engine-ca.pem')}`,
        'verify = 2',
        '',
      ].join('\n'),
    );
    const child = spawn(STUNNEL, [conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-4_000);
    });
    const state = await waitFor(`stunnel on 127.0.0.1:${port}`, async () => (child.exitCode !== null ? 'exited' : (await accepts(port)) ? 'listening' : undefined), 10_000, 50);
    if (state === 'listening') {
      const address = `127.0.0.1:${port}`;
      return {
        host: `tcp://${address}`,
        address,
        certDir,
        wrongCaDir,
        untrustedClientDir,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited(child);
        },
      };
    }
    child.kill('SIGKILL');
    await exited(child);
    if (attempt >= 3) throw new Error(`stunnel did not listen on 127.0.0.1:${port}: ${stderr.trim()}`);
  }
}
