import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, isAgentError } from '../../../src/errors.js';
import { engineConnection, loadEngineTls, type EngineTls } from '../../../src/runtime/engine-connection.js';
import { generateTestPki } from '../../helpers/test-ca.js';
import { tempDir } from '../../helpers/temp-dirs.js';

const TLS: EngineTls = { files: { caFile: '/certs/ca.pem', certFile: '/certs/cert.pem', keyFile: '/certs/key.pem' }, ca: 'CA', cert: 'CERT', key: 'KEY' };
const CA_ONLY: EngineTls = { files: { caFile: '/certs/ca.pem' }, ca: 'CA' };
/** What docker-modem would otherwise take from DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_CLIENT_TIMEOUT. */
const NEUTRAL = { socketPath: undefined, host: undefined, port: undefined, protocol: undefined, ca: undefined, cert: undefined, key: undefined, timeout: undefined, username: undefined };

describe('engineConnection', () => {
  it.each<[string, string | undefined, EngineTls | undefined, Record<string, unknown>, Record<string, unknown>]>([
    ['no host: the socket', undefined, undefined, { ...NEUTRAL, socketPath: '/var/run/docker.sock' }, { transport: 'unix', display: 'unix:///var/run/docker.sock', publishHost: '127.0.0.1' }],
    ['unix:// host', 'unix:///run/user/1000/docker.sock', undefined, { socketPath: '/run/user/1000/docker.sock', host: undefined }, { transport: 'unix', display: 'unix:///run/user/1000/docker.sock' }],
    ['tcp:// plain, default port 2375', 'tcp://10.0.0.5', undefined, { ...NEUTRAL, protocol: 'http', host: '10.0.0.5', port: 2375 }, { transport: 'http', display: '10.0.0.5:2375', publishHost: '10.0.0.5' }],
    ['tcp:// with TLS files: https, default port 2376', 'tcp://10.0.0.5', TLS, { protocol: 'https', host: '10.0.0.5', port: 2376, ca: 'CA', cert: 'CERT', key: 'KEY' }, { transport: 'https', display: '10.0.0.5:2376', tlsFiles: TLS.files }],
    ['tcp:// with TLS and a port', 'tcp://engine.internal:3376', CA_ONLY, { protocol: 'https', host: 'engine.internal', port: 3376, ca: 'CA', cert: undefined }, { transport: 'https', display: 'engine.internal:3376' }],
    ['http://', 'http://10.0.0.5:2375', undefined, { protocol: 'http', port: 2375 }, { transport: 'http' }],
    ['https:// without files: system CAs', 'https://engine.example.com', undefined, { ...NEUTRAL, protocol: 'https', host: 'engine.example.com', port: 2376 }, { transport: 'https', display: 'engine.example.com:2376', tlsFiles: {} }],
    ['IPv6 literal', 'tcp://[fd00::5]:2375', undefined, { host: 'fd00::5', port: 2375 }, { display: '[fd00::5]:2375', publishHost: 'fd00::5' }],
    ['ssh:// with user and port', 'ssh://deploy@gpu-01:2222', undefined, { protocol: 'ssh', host: 'gpu-01', port: 2222, username: 'deploy', sshOptions: { agent: '/run/agent.sock' } }, { transport: 'ssh', display: 'ssh://deploy@gpu-01:2222', publishHost: 'gpu-01' }],
    ['ssh:// defaults', 'ssh://gpu-01', undefined, { protocol: 'ssh', port: 22, username: undefined }, { display: 'ssh://gpu-01:22' }],
  ])('%s', (_name, host, tls, options, endpoint) => {
    const connection = engineConnection({ socketPath: '/var/run/docker.sock', host, tls, sshAuthSock: '/run/agent.sock' });
    expect(connection.dockerOptions).toMatchObject(options);
    // Every key docker-modem would read from the environment is decided here.
    for (const key of Object.keys(NEUTRAL)) expect(Object.keys(connection.dockerOptions)).toContain(key);
    expect(connection.endpoint).toMatchObject(endpoint);
  });

  it.each<[string, string, EngineTls | undefined, RegExp]>([
    ['an unknown scheme', 'ftp://box', undefined, /is not a Docker host/],
    ['TLS files with http://', 'http://10.0.0.5:2375', TLS, /http:\/\/, which is plain HTTP; write tcp:\/\/ or https:\/\//],
    ['TLS files with ssh://', 'ssh://gpu-01', CA_ONLY, /ssh carries its own encryption/],
  ])('refuses %s (CONFIG_INVALID)', (_name, host, tls, message) => {
    let caught: unknown;
    try {
      engineConnection({ socketPath: '/var/run/docker.sock', host, tls });
    } catch (err) {
      caught = err;
    }
    expect(isAgentError(caught, ErrorCodes.CONFIG_INVALID)).toBe(true);
    expect((caught as Error).message).toMatch(message);
  });
});

describe('loadEngineTls', () => {
  async function pkiDir(): Promise<{ dir: string; file: (name: string) => string }> {
    const dir = await tempDir('engine-tls');
    const pki = await generateTestPki();
    await writeFile(path.join(dir, 'ca.pem'), pki.caPem);
    await writeFile(path.join(dir, 'cert.pem'), pki.certPem);
    await writeFile(path.join(dir, 'key.pem'), pki.keyPem);
    const other = await generateTestPki();
    await writeFile(path.join(dir, 'other-key.pem'), other.keyPem);
    await writeFile(path.join(dir, 'garbage.pem'), 'not a certificate\n');
    return { dir, file: (name) => path.join(dir, name) };
  }

  it('reads the three files; none set is no TLS', async () => {
    const { file } = await pkiDir();
    const tls = await loadEngineTls({ caFile: file('ca.pem'), certFile: file('cert.pem'), keyFile: file('key.pem') });
    expect(tls?.ca).toContain('-----BEGIN CERTIFICATE-----');
    expect(tls?.key).toContain('PRIVATE KEY-----');
    expect(tls?.files.caFile).toBe(file('ca.pem'));
    expect(await loadEngineTls({})).toBeUndefined();
  });

  it.each<[string, (f: (name: string) => string) => Record<string, string>, RegExp]>([
    ['a missing file, by key and path', (f) => ({ caFile: f('nope.pem') }), /^cannot read docker\.tls\.ca_file \/.*\/nope\.pem: no such file; fix the path/],
    ['a CA file without a certificate', (f) => ({ caFile: f('garbage.pem') }), /docker\.tls\.ca_file \/.*\/garbage\.pem holds no PEM certificate/],
    ['a key that does not match the certificate', (f) => ({ certFile: f('cert.pem'), keyFile: f('other-key.pem') }), /docker\.tls files are not usable \(.*\): check that \/.*\/cert\.pem is a PEM certificate and \/.*\/other-key\.pem its PEM private key/],
    ['a certificate without its key', (f) => ({ certFile: f('cert.pem') }), /docker\.tls\.cert_file is set without docker\.tls\.key_file/],
  ])('refuses %s (CONFIG_INVALID)', async (_name, files, message) => {
    const { file } = await pkiDir();
    const err = await loadEngineTls(files(file)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isAgentError(err, ErrorCodes.CONFIG_INVALID)).toBe(true);
    expect((err as Error).message).toMatch(message);
  });
});
