import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeRegistryKey, RegistryAuth, registryHost } from '../../../src/runtime/registry-auth.js';

describe('registryHost', () => {
  it.each([
    ['busybox', 'docker.io'],
    ['library/busybox:1', 'docker.io'],
    ['acme/app', 'docker.io'],
    ['docker.io/acme/app:1', 'docker.io'],
    ['index.docker.io/acme/app', 'docker.io'],
    ['ghcr.io/acme/app:1', 'ghcr.io'],
    ['127.0.0.1:5000/x:1', '127.0.0.1:5000'],
    ['localhost/x', 'localhost'],
    ['Registry.Example.com/x', 'registry.example.com'],
  ])('%s → %s', (ref, host) => {
    expect(registryHost(ref)).toBe(host);
  });

  it.each([
    ['https://index.docker.io/v1/', 'docker.io'],
    ['index.docker.io', 'docker.io'],
    ['ghcr.io', 'ghcr.io'],
    ['http://127.0.0.1:5000/v2/', '127.0.0.1:5000'],
  ])('config key %s → %s', (key, host) => {
    expect(normalizeRegistryKey(key)).toBe(host);
  });
});

describe('RegistryAuth', () => {
  let dir: string;
  const logLines: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString());
        done();
      },
    }),
  );
  const originalPath = process.env['PATH'];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'registry-auth-'));
    // A credential helper that knows one registry, and one that hangs.
    await writeFile(
      join(dir, 'docker-credential-fake'),
      '#!/bin/sh\nread server\nif [ "$server" = "helper.example.com" ]; then echo \'{"ServerURL":"helper.example.com","Username":"helper-user","Secret":"helper-secret"}\'; exit 0; fi\nif [ "$server" = "token.example.com" ]; then echo \'{"Username":"<token>","Secret":"id-token"}\'; exit 0; fi\necho "credentials not found in native keychain"; exit 1\n',
    );
    await writeFile(join(dir, 'docker-credential-slow'), '#!/bin/sh\nsleep 5\n'); // sh keeps running: its child holds stdout
    await chmod(join(dir, 'docker-credential-fake'), 0o755);
    await chmod(join(dir, 'docker-credential-slow'), 0o755);
    process.env['PATH'] = `${dir}:${originalPath ?? ''}`;
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub-pass:with-colon').toString('base64') },
          'ghcr.io': { username: 'gh', password: 'gh-secret' },
          'fallback.example.com': { auth: Buffer.from('fb:fb-secret').toString('base64') },
          'id.example.com': { identitytoken: 'tok' },
        },
        credHelpers: { 'helper.example.com': 'fake', 'token.example.com': 'fake', 'fallback.example.com': 'fake', 'slow.example.com': 'slow' },
      }),
    );
  });

  afterAll(async () => {
    process.env['PATH'] = originalPath;
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['busybox:1', { username: 'hubuser', password: 'hub-pass:with-colon', serveraddress: 'https://index.docker.io/v1/' }],
    ['index.docker.io/acme/app', { username: 'hubuser', password: 'hub-pass:with-colon', serveraddress: 'https://index.docker.io/v1/' }],
    ['ghcr.io/acme/app:1', { username: 'gh', password: 'gh-secret', serveraddress: 'ghcr.io' }],
    ['id.example.com/x', { identitytoken: 'tok', serveraddress: 'id.example.com' }],
    ['helper.example.com/x:1', { username: 'helper-user', password: 'helper-secret', serveraddress: 'helper.example.com' }],
    ['token.example.com/x:1', { identitytoken: 'id-token', serveraddress: 'token.example.com' }],
    // The helper has nothing for it: fall back to the auths entry.
    ['fallback.example.com/x', { username: 'fb', password: 'fb-secret', serveraddress: 'fallback.example.com' }],
    ['quay.io/x', undefined],
  ])('%s', async (ref, expected) => {
    const auth = new RegistryAuth({ logger, dockerConfigDir: dir });
    expect(await auth.forImage(ref)).toEqual(expected);
  });

  it('bounds a hanging credential helper by its timeout', async () => {
    const auth = new RegistryAuth({ logger, dockerConfigDir: dir, helperTimeoutMs: 300 });
    const started = Date.now();
    expect(await auth.forImage('slow.example.com/x')).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('pulls anonymously without a config file', async () => {
    const auth = new RegistryAuth({ logger, dockerConfigDir: join(dir, 'missing') });
    expect(await auth.forImage('ghcr.io/x')).toBeUndefined();
  });

  it('uses $DOCKER_CONFIG when no directory is given', async () => {
    const previous = process.env['DOCKER_CONFIG'];
    process.env['DOCKER_CONFIG'] = dir;
    try {
      expect(await new RegistryAuth({ logger }).forImage('ghcr.io/x')).toMatchObject({ username: 'gh' });
    } finally {
      if (previous === undefined) delete process.env['DOCKER_CONFIG'];
      else process.env['DOCKER_CONFIG'] = previous;
    }
  });

  it('never logs a credential', () => {
    const all = logLines.join('\n');
    for (const secret of ['hub-pass', 'gh-secret', 'helper-secret', 'id-token', 'fb-secret', 'tok"']) expect(all).not.toContain(secret);
    expect(all).toContain('credential helper gave no credentials');
  });
});
