import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { loadConfig } from '../../src/config/load-config.js';
import type { AgentConfig } from '../../src/config/types.js';
import { AgentError, ErrorCodes, isAgentError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { DockerRuntime } from '../../src/runtime/docker-runtime.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import type { ServiceDefinition } from '../../src/service-definition/types.js';
import { newTestRunId, removeTestNetwork, requireDocker } from '../helpers/docker.js';
import { listByLabel, sweepByLabel } from '../helpers/engine.js';
import { startTestAgent, tempDir, testConfig, type TestAgent } from '../helpers/agent-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { ensureTestImages, TEST_IMAGE_HTTP } from '../helpers/test-images.js';
import { requireStunnel, startTlsEngine, type TlsEngine } from '../helpers/tls-engine.js';

const SUITE = 'TLS tcp:// engine integration tests';
const ready = (await requireDocker(SUITE)) && (await requireStunnel(SUITE));

/**
 * The agent against a TLS-protected tcp:// engine that requires client certificates (stunnel in
 * front of the local engine's socket), configured the docker CLI's way: DOCKER_HOST,
 * DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, read by the config loader. The engine is the local one
 * behind the tunnel, so the ports that `docker.addressing: auto` publishes are reachable on
 * 127.0.0.1, the engine's address.
 */
describe.skipIf(!ready)('agent → TLS tcp:// engine with client certificates (DOCKER_TLS_VERIFY)', () => {
  const runId = newTestRunId('tls');
  let engine: TlsEngine;
  let t: TestAgent | undefined;
  const spec: ServiceDefinition = {
    service_slug: 'tls-web',
    display_name: 'behind TLS',
    service_type: 'deployed',
    docker_image: TEST_IMAGE_HTTP,
    exposed_port: 8080,
    health_path: '/health',
    env_config: [{ env_name: 'GREETING', env_value: 'through-tls' }],
    volume_config: [],
    required_labels: [],
    gpu_count: 0,
    replica_count: 1,
  };

  /** The agent's config with its docker section from loadConfig's env path, like `cyberun-agent run` under that env. */
  async function configFor(certPath: string, stateDir: string): Promise<AgentConfig> {
    const base = testConfig(runId, stateDir);
    const loaded = await loadConfig({
      argv: ['--state-dir', stateDir, '--agent-id', base.agentId, '--set', `docker.network=${base.docker.network}`],
      env: { DOCKER_HOST: engine.host, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certPath },
      cwd: stateDir,
      searchPaths: [],
    });
    expect(loaded.origins['docker.host']).toBe('env DOCKER_HOST');
    expect(loaded.origins['docker.tls.ca_file']).toBe('env DOCKER_TLS_VERIFY (DOCKER_CERT_PATH)');
    return { ...base, docker: loaded.config.docker };
  }

  async function startRejection(config: AgentConfig): Promise<AgentError> {
    const started = await startTestAgent(config).then(
      (agent) => agent,
      (err: unknown) => err,
    );
    if (!(started instanceof AgentError)) {
      if (started !== null && typeof started === 'object' && 'stop' in started) await (started as TestAgent).stop();
      throw new Error(`expected the agent to fail to start with an AgentError, got ${String(started)}`);
    }
    return started;
  }

  beforeAll(async () => {
    await ensureTestImages();
    engine = await startTlsEngine();
  });

  afterAll(async () => {
    await t?.stop();
    await sweepByLabel(`${Labels.AGENT_ID}=${testConfig(runId, '/').agentId}`);
    await removeTestNetwork(testConfig(runId, '/').docker.network);
    await engine?.stop();
  });

  it('deploys a service through the TLS engine; the replica runs, is healthy and answers on its published port', async () => {
    const config = await configFor(engine.certDir, await tempDir('tls-state'));
    expect(config.docker).toMatchObject({
      host: engine.host,
      addressing: 'auto',
      tls: { caFile: path.join(engine.certDir, 'ca.pem'), certFile: path.join(engine.certDir, 'cert.pem'), keyFile: path.join(engine.certDir, 'key.pem') },
    });
    t = await startTestAgent(config);
    t.agent.reconciler.applyDesired([{ id: 'svc-tls', definition: spec }], 1, 'test');
    const status = await waitFor('tls-web running with 1 ready', () => {
      const s = t?.status('svc-tls');
      return s?.state === 'running' && s.readyReplicas === 1 ? s : undefined;
    }, 60_000);
    expect(status.replicas.map((r) => r.phase)).toEqual(['ready']);
    expect(await listByLabel(`${Labels.SERVICE_ID}=svc-tls`)).toHaveLength(1);
    const [endpoint] = t.agent.reconciler.readyEndpoints('svc-tls');
    expect(endpoint?.host).toBe('127.0.0.1');
    expect(endpoint?.port).not.toBe(8080);
    const res = await request(`http://${endpoint?.host}:${endpoint?.port}/cgi-bin/env`, { signal: AbortSignal.timeout(5_000) });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toContain('GREETING=through-tls');

    t.agent.reconciler.applyDesired([], 2, 'test');
    await waitFor('tls-web gone', () => t?.status('svc-tls') === undefined, 30_000);
    expect(await listByLabel(`${Labels.SERVICE_ID}=svc-tls`)).toEqual([]);
  });

  it('a wrong CA: the agent does not start, with AGENT_ERR_DOCKER_TLS naming TLS and the CA file to fix', async () => {
    const err = await startRejection(await configFor(engine.wrongCaDir, await tempDir('tls-wrong-ca')));
    expect(err.code).toBe(ErrorCodes.DOCKER_TLS);
    expect(err.code).toBe('AGENT_ERR_DOCKER_TLS');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(`TLS handshake with the Docker Engine at ${engine.address} failed (`);
    expect(err.message).toContain(`its certificate does not verify against ${path.join(engine.wrongCaDir, 'ca.pem')}; check docker.tls.ca_file / $DOCKER_CERT_PATH/ca.pem`);
  });

  it('a client certificate the engine does not trust: AGENT_ERR_DOCKER_TLS naming the certificate file', async () => {
    const err = await startRejection(await configFor(engine.untrustedClientDir, await tempDir('tls-bad-client')));
    expect(err.code).toBe(ErrorCodes.DOCKER_TLS);
    expect(err.message).toContain(`TLS handshake with the Docker Engine at ${engine.address} failed (`);
    expect(err.message).toContain(`the engine refused the client certificate ${path.join(engine.untrustedClientDir, 'cert.pem')}; check docker.tls.cert_file / docker.tls.key_file`);
  });

  it('plain HTTP to the TLS engine (no DOCKER_TLS_VERIFY): DOCKER_UNAVAILABLE that points at TLS', async () => {
    const runtime = new DockerRuntime({ socketPath: '/nonexistent.sock', host: engine.host, apiTimeoutMs: 5_000, addressing: 'auto', logger: silentLogger() });
    const err = await runtime.ping().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isAgentError(err, ErrorCodes.DOCKER_UNAVAILABLE)).toBe(true);
    expect((err as Error).message).toContain(`the Docker Engine at ${engine.address} is not reachable`);
    expect((err as Error).message).toContain('if it expects TLS (port 2376), set DOCKER_TLS_VERIFY=1 with DOCKER_CERT_PATH, or docker.tls.*');
  });
});
