import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fetch, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../src/gateway/gateway-server.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import { startTestAgent, tempDir, testConfig, type TestAgent } from '../helpers/agent-harness.js';
import { newTestRunId, removeTestNetwork, requireDocker } from '../helpers/docker.js';
import { listByLabel, sweepByLabel } from '../helpers/engine.js';
import { gatewayClient } from '../helpers/gateway-client.js';
import { upstreamHandler } from '../helpers/proxy-harness.js';
import { generateTestPki } from '../helpers/test-ca.js';

const docker = await requireDocker('external service e2e tests');
const SK = 'sk-external-e2e-kkkkkkkkkkk';
const AK = 'ak-external-e2e-kkkkkkkkkkk';
const auth = { authorization: `Bearer ${SK}` };
const CRED = '3c1f6a2e-8b4d-4e5f-9a0b-1c2d3e4f5a6b';
const SECRET = 'Bearer ext-e2e-secret-value';

describe.skipIf(!docker)('external service e2e: client → local gateway → ws tunnel → the real agent → https upstream', () => {
  const runId = newTestRunId('ext');
  const slug = `ext-${runId.slice(-6)}`;
  let gateway: Gateway;
  let t: TestAgent;
  let upstream: Server;
  let serviceId: string;
  /** Every line the agent logged, at debug level. */
  const logLines: string[] = [];

  beforeAll(async () => {
    const pki = await generateTestPki(['localhost']);
    upstream = createServer({ cert: pki.certPem, key: pki.keyPem }, upstreamHandler({ bytes: 0, closed: false }));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const dataDir = await tempDir('ext-gw');
    await writeFile(join(dataDir, 'credentials.json'), JSON.stringify({ [CRED]: { value: SECRET } }), { mode: 0o600 });
    gateway = await startGateway({ port: 0, dataDir, apiKeys: [SK], agentKeys: [AK], logger: silentLogger(), heartbeatIntervalMs: 500 });
    const stateDir = await tempDir('ext-agent');
    const caFile = join(stateDir, 'upstream-ca.pem');
    await writeFile(caFile, pki.caPem);
    const base = testConfig(runId, stateDir, { gatewayUrl: gateway.agentUrl, agentKey: AK });
    const config = { ...base, logLevel: 'debug' as const, proxy: { ...base.proxy, allowPrivateUpstreams: true, upstreamCaFile: caFile } };
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines.push(...String(chunk).split('\n').filter(Boolean));
        cb();
      },
    });
    t = await startTestAgent(config, undefined, createLogger({ level: 'debug', destination: sink }));
    const port = (upstream.address() as AddressInfo).port;
    serviceId = await gatewayClient(gateway.url, SK).deployRunning({
      service_slug: slug,
      display_name: 'external e2e',
      service_type: 'external',
      external_url: `https://127.0.0.1:${port}/v1/`,
      external_auth_credential_id: CRED,
    });
  }, 120_000);

  afterAll(async () => {
    await t?.stop();
    await gateway?.close();
    upstream?.closeAllConnections();
    upstream?.close();
    await sweepByLabel(`${Labels.AGENT_ID}=${t?.config.agentId}`);
    await removeTestNetwork(t?.config.docker.network ?? '');
  });

  it('runs no container and reports the service running', async () => {
    expect(await listByLabel(`${Labels.SERVICE_ID}=${serviceId}`)).toEqual([]);
    expect(t.status(serviceId)?.state).toBe('running');
  });

  it('the transparent proxy and invoke reach external_url with the resolved credential, never the caller\'s', async () => {
    const res = await request(`${gateway.url}/api/v1/r/containers/${slug}/echo/chat?stream=false`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json', cookie: 'sid=caller' }, body: '{"q":1}' });
    expect(res.statusCode).toBe(201);
    expect(res.headers['x-upstream']).toBe('yes');
    const echoed = (await res.body.json()) as { url: string; body: string; headers: Record<string, string> };
    expect(echoed).toMatchObject({ url: '/v1/echo/chat?stream=false', body: '{"q":1}' });
    expect(echoed.headers['authorization']).toBe(SECRET);
    expect(echoed.headers['cookie']).toBeUndefined();

    const inv = await fetch(`${gateway.url}/api/v1/r/invoke/${slug}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ method: 'GET', path: '/echo?via=invoke', headers: { authorization: 'Bearer caller-token' } }) });
    const out = (await inv.json()) as { status_code: number; body_base64: string };
    expect(out.status_code).toBe(201);
    const viaInvoke = JSON.parse(Buffer.from(out.body_base64, 'base64').toString('utf8')) as { url: string; headers: Record<string, string> };
    expect(viaInvoke).toMatchObject({ url: '/v1/echo?via=invoke', headers: { authorization: SECRET } });
  });

  it('the credential value appears in no agent log line, status report or gateway answer', async () => {
    expect(logLines.some((l) => l.includes('tunnel connected'))).toBe(true);
    const value = SECRET.slice('Bearer '.length);
    expect(logLines.filter((l) => l.includes(value))).toEqual([]);
    expect(JSON.stringify(t.agent.reconciler.statusSnapshot())).not.toContain(value);
    const listed = await fetch(`${gateway.url}/api/v1/r/containers/${slug}`, { headers: auth });
    expect(await listed.text()).not.toContain(value);
  });
});
