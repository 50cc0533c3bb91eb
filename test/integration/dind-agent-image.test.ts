import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { rm, stat } from 'node:fs/promises';
import { startGateway, type Gateway } from '../../src/gateway/gateway-server.js';
import { silentLogger } from '../../src/log.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import { DOCKER_SOCKET, newTestRunId, removeTestNetwork, requireDocker, sweepTestContainers, TEST_RUN_LABEL } from '../helpers/docker.js';
import { inspect, sweepByLabel } from '../helpers/engine.js';
import { ensureTestImages, TEST_IMAGE_HTTP } from '../helpers/test-images.js';
import { tempDir } from '../helpers/agent-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { agentImage, docker as dockerCli } from '../helpers/dind.js';

const docker = await requireDocker('agent container image (docker socket mounted) integration tests');

/**
 * The project's own image, built from its Dockerfile on a local Node base, run as operators run it:
 * non-root with the socket's group, the Docker socket mounted, talking to a gateway on the host.
 * It deploys a sibling container and survives its own restart without restarting the sibling.
 */
describe.skipIf(!docker)('the agent image with the Docker socket mounted', () => {
  const runId = newTestRunId('dind-b');
  const tag = runId.slice(-6);
  const network = `cyberun-${tag}`;
  const agentId = `img-${tag}`;
  const apiKey = `sk-${runId}-api-key-0000000000`;
  const agentKey = `ak-${runId}-agent-key-000000000`;
  let gateway: Gateway;
  let gatewayDir: string;
  let agentContainer: string;
  let serviceId: string;

  const api = async (method: string, p: string, body?: unknown) => {
    const res = await request(`${gateway.url}/api/v1${p}`, {
      method: method as 'GET',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.body.text();
    return { status: res.statusCode, json: (text.startsWith('{') ? JSON.parse(text) : {}) as Record<string, unknown>, text };
  };
  const siblings = () => dockerCli(['ps', '-q', '--no-trunc', '--filter', `label=${Labels.AGENT_ID}=${agentId}`]).then((o) => o.split('\n').filter(Boolean));
  const health = () => dockerCli(['inspect', '-f', '{{.State.Health.Status}}', agentContainer]);

  beforeAll(async () => {
    await ensureTestImages();
    const image = await agentImage();
    // The agent's network exists before the agent runs, so its container can join it: the agent
    // reaches replicas by IP on that network (docs/operations.md).
    await dockerCli(['network', 'create', '--label', `${TEST_RUN_LABEL}=${runId}`, network]);
    const gatewayIp = await dockerCli(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Gateway}}', network]);
    gatewayDir = await tempDir('dind-b-gateway');
    gateway = await startGateway({ host: gatewayIp, port: 0, dataDir: gatewayDir, apiKeys: [apiKey], agentKeys: [agentKey], logger: silentLogger() });
    // What operators pass as --group-add "$(stat -c %g /var/run/docker.sock)".
    const socketGid = String((await stat(DOCKER_SOCKET)).gid);
    agentContainer = await dockerCli([
      'run', '-d', '--name', `cyberun-agent-${tag}`, '--label', `${TEST_RUN_LABEL}=${runId}`, '--init',
      '--group-add', socketGid, '-v', `${DOCKER_SOCKET}:/var/run/docker.sock`, '--network', network,
      '--health-interval', '1s', '--health-start-period', '30s', '--health-timeout', '10s',
      '-e', `CYBERUN_GATEWAY_URL=${gateway.agentUrl}`, '-e', `CYBERUN_AGENT_KEY=${agentKey}`, '-e', `CYBERUN_AGENT_ID=${agentId}`,
      '-e', `CYBERUN_DOCKER_NETWORK=${network}`, '-e', 'CYBERUN_GPU_DETECT=none', '-e', 'CYBERUN_HEALTH_INTERVAL=500ms',
      '-e', 'CYBERUN_HEALTH_TIMEOUT=500ms', '-e', 'CYBERUN_LOG_LEVEL=info',
      image,
    ]);
  }, 300_000);

  afterAll(async () => {
    const logs = agentContainer ? await dockerCli(['logs', '--tail', '40', agentContainer]).catch(() => '') : '';
    if (process.env['TEST_LOG_LEVEL']) process.stderr.write(`agent container logs:\n${logs}\n`);
    await sweepTestContainers(runId);
    await sweepByLabel(`${Labels.AGENT_ID}=${agentId}`);
    await gateway?.close();
    await removeTestNetwork(network);
    if (gatewayDir) await rm(gatewayDir, { recursive: true, force: true });
  });

  it('runs non-root, connects to the gateway and turns healthy (HEALTHCHECK via the admin socket)', async () => {
    expect(await dockerCli(['exec', agentContainer, 'id', '-u'])).toBe('10001');
    await waitFor('agent listed by the gateway', async () => {
      const agents = await api('GET', '/agents');
      return JSON.stringify(agents.json).includes(agentId);
    }, 30_000, 250);
    await waitFor('container healthy', async () => (await health()) === 'healthy', 40_000, 500);
    const status = await dockerCli(['exec', agentContainer, 'node', '/app/bin/cyberun-agent.js', 'status']);
    expect(status).toMatch(/^tunnel: connected for /m);
  });

  it('deploys a sibling container through the gateway API; it reaches running', async () => {
    const created = await api('POST', '/containers', {
      service_slug: `sib-${tag}`,
      display_name: 'sibling',
      docker_image: TEST_IMAGE_HTTP,
      exposed_port: 8080,
      health_path: '/health',
    });
    expect(created.status).toBe(200);
    serviceId = String(created.json['id']);
    expect((await api('POST', `/containers/${serviceId}/deploy`)).status).toBe(200);
    await waitFor('service running', async () => (await api('GET', `/containers/${serviceId}`)).json['service_status'] === 'running', 60_000, 250);
    expect(await siblings()).toHaveLength(1);
  });

  it('survives `docker restart` of the agent container without restarting the sibling', async () => {
    const [sibling] = await siblings();
    const before = (await inspect(sibling!))!;
    await dockerCli(['restart', '-t', '20', agentContainer], 60_000);
    await waitFor('agent healthy again', async () => (await health()) === 'healthy', 40_000, 500);
    await waitFor('service running again after the reconnect', async () => {
      const rt = await api('GET', `/r/containers/sib-${tag}`);
      return rt.json['service_status'] === 'running' && JSON.stringify(rt.json).includes(agentId);
    }, 30_000, 250);
    // A resync (30 s default) would also have adopted it by now; the sibling is the same process.
    const after = (await inspect(sibling!))!;
    expect(await siblings()).toEqual([sibling]);
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
    expect(after.State.Running).toBe(true);
    const logs = await dockerCli(['logs', agentContainer]);
    expect(logs).toContain('shutting down (containers keep running)');
    expect(logs).not.toContain(agentKey);
  });

  it('proxies a request to the sibling through the gateway and the agent container', async () => {
    const res = await api('GET', `/r/containers/sib-${tag}/cgi-bin/hostname`);
    expect(res.status).toBe(200);
    expect(res.text.trim()).toMatch(/^[0-9a-f]{12}$/);
  });
});
