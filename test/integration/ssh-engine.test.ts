import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ErrorCodes, isAgentError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { DockerRuntime } from '../../src/runtime/docker-runtime.js';
import { newTestRunId, removeTestNetwork, requireDocker, TEST_RUN_LABEL } from '../helpers/docker.js';
import { sweepByLabel } from '../helpers/engine.js';
import { waitFor } from '../helpers/wait-for.js';
import { requireSshd, startSshEngine, type SshEngine } from '../helpers/ssh-engine.js';
import { ensureTestImages, TEST_IMAGE_HTTP } from '../helpers/test-images.js';
import { defaultSettings } from '../helpers/container-settings.js';

const SUITE = 'ssh:// engine integration tests';
const ready = (await requireDocker(SUITE)) && (await requireSshd(SUITE));

/**
 * DockerRuntime against `ssh://user@127.0.0.1:<port>`: docker-modem's ssh transport (ssh2 with
 * the keys of an ssh-agent, then `docker system dial-stdio` on the host) in front of the local
 * engine. Published ports are on the engine's host, 127.0.0.1 here.
 */
describe.skipIf(!ready)('DockerRuntime → the engine over ssh:// (ssh-agent keys)', () => {
  const runId = newTestRunId('ssh');
  const network = `cyberun-${runId}`.slice(0, 60);
  let ssh: SshEngine;

  beforeAll(async () => {
    await ensureTestImages();
    ssh = await startSshEngine();
  });

  afterAll(async () => {
    await sweepByLabel(`${TEST_RUN_LABEL}=${runId}`);
    await removeTestNetwork(network);
    await ssh?.stop();
  });

  it('runs a container through ssh: network, image, create, start, inspect, published port, list, remove', async () => {
    const runtime = new DockerRuntime({ socketPath: '/nonexistent.sock', host: ssh.host, sshAuthSock: ssh.authSock, apiTimeoutMs: 20_000, addressing: 'auto', logger: silentLogger() });
    expect(runtime.publishesPorts).toBe(true);
    await runtime.ping();
    await runtime.ensureNetwork(network);
    expect(await runtime.hasImage(TEST_IMAGE_HTTP)).toBe(true);
    const id = await runtime.createContainer({
      name: `cyberun-${runId}`.slice(0, 60),
      image: TEST_IMAGE_HTTP,
      env: ['GREETING=over-ssh'],
      labels: { [TEST_RUN_LABEL]: runId },
      binds: [],
      exposedPort: 8080,
      network,
      publishPort: true,
      gpu: { kind: 'none' },
      settings: defaultSettings,
    });
    await runtime.startContainer(id);
    const running = await waitFor('the container running with a published port', async () => {
      const c = await runtime.inspectContainer(id);
      return c?.state === 'running' && c.publishedPort !== undefined ? c : undefined;
    }, 30_000);
    const endpoint = runtime.replicaEndpoint(running, 8080);
    expect(endpoint?.host).toBe('127.0.0.1');
    const body = await waitFor('the replica answering on its published port', async () => {
      const res = await request(`http://127.0.0.1:${endpoint?.port}/cgi-bin/env`, { signal: AbortSignal.timeout(2_000) });
      const text = await res.body.text();
      return res.statusCode === 200 ? text : undefined;
    }, 20_000);
    expect(body).toContain('GREETING=over-ssh');
    expect((await runtime.listContainers({ [TEST_RUN_LABEL]: runId })).map((c) => c.id)).toEqual([id]);
    await runtime.removeContainer(id);
    expect(await runtime.inspectContainer(id)).toBeUndefined();
  }, 90_000);

  it('a key the host does not accept → DOCKER_UNAVAILABLE naming the ssh engine and the ssh-agent', async () => {
    const runtime = new DockerRuntime({ socketPath: '/nonexistent.sock', host: ssh.host, sshAuthSock: ssh.strangerAuthSock, apiTimeoutMs: 20_000, addressing: 'auto', logger: silentLogger() });
    const err = await runtime.ping().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isAgentError(err, ErrorCodes.DOCKER_UNAVAILABLE)).toBe(true);
    expect((err as Error).message).toContain(`the Docker Engine at ${ssh.display} is not reachable (client-authentication)`);
    expect((err as Error).message).toContain('the ssh-agent at $SSH_AUTH_SOCK holds a key it accepts for that user');
  });
});
