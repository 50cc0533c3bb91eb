import { fetch, request } from 'undici';
import { silentLogger } from '../../src/log.js';
import { TunnelClient } from '../../src/tunnel/tunnel-client.js';
import { statusReport } from './fake-agent-core.js';
import { waitFor } from './wait-for.js';
import { startGatewayProcess, type GatewayProcess } from './gateway-process.js';
import { EndpointCore, startUpstream, type Upstream } from './proxy-harness.js';
import { proxyEndpointFor } from './proxy-endpoint.js';
import { tempDir } from './temp-dirs.js';

export const FUZZ_SK = 'sk-fuzz-bystander-0000000000000000';
export const GOOD_AK = 'ak-fuzz-good-agent-000000000000000';
export const EVIL_AK = 'ak-fuzz-evil-agent-000000000000000';
export const FUZZ_SLUG = 'fuzz-svc';

/**
 * The stage for the fuzz tests: `cyberun-agent gateway` in its own process; a well-behaved agent
 * (`good-agent`, a real TunnelClient with the agent's proxy, in this process) serving `fuzz-svc`
 * from an upstream on 127.0.0.1; and the key of a second agent (`evil-agent`) for the hostile
 * tunnel peer. Everything is loopback.
 */
export interface FuzzRig {
  gateway: GatewayProcess;
  upstream: Upstream;
  client: TunnelClient;
  serviceId: string;
  stop(): Promise<void>;
}

export async function startFuzzRig(): Promise<FuzzRig> {
  const gateway = await startGatewayProcess(await tempDir('fuzz-gw'), {
    api: [FUZZ_SK],
    agent: [
      { key: GOOD_AK, agentId: 'good-agent' },
      { key: EVIL_AK, agentId: 'evil-agent' },
    ],
  });
  const upstream = await startUpstream();
  const core = new EndpointCore();
  const client = new TunnelClient({
    url: gateway.agentUrl,
    agentKey: GOOD_AK,
    agentId: 'good-agent',
    agentVersion: '0.1.0-fuzz',
    labels: () => [],
    inventory: () => undefined,
    core,
    logger: silentLogger(),
    streams: proxyEndpointFor(core),
  });
  client.start();
  await waitFor('the good agent connected', () => client.currentState().kind === 'connected', 15_000);
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${gateway.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${FUZZ_SK}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return (await res.json()) as Record<string, unknown>;
  };
  const serviceId = String((await api('POST', '/containers', { service_slug: FUZZ_SLUG, display_name: 'fuzz', docker_image: 'busybox:1' }))['id']);
  core.endpoints.set(serviceId, [{ serviceId, replicaIndex: 0, containerId: 'c0', host: '127.0.0.1', port: upstream.port }]);
  await api('POST', `/containers/${serviceId}/deploy`);
  await waitFor('fuzz-svc synced to the good agent', () => core.lastApplied()?.services.some((s) => s.id === serviceId), 10_000);
  core.emit(statusReport(serviceId, FUZZ_SLUG, { readyReplicas: 1, state: 'running' }));
  await waitFor('fuzz-svc running', async () => (await api('GET', `/r/containers/${FUZZ_SLUG}`))['service_status'] === 'running', 10_000);
  return {
    gateway,
    upstream,
    client,
    serviceId,
    async stop() {
      await client.close();
      await gateway.stop();
      await upstream.close();
    },
  };
}

export interface BystanderResult {
  /** Requests that got the expected answer: REST 200, proxied 201 with the echoed body. */
  ok: number;
  failures: string[];
}

/**
 * Another client and the good agent's traffic while the fuzz runs: alternately a REST call and a
 * proxied request through the good agent, one at a time, until stopped.
 */
export function startBystander(rig: FuzzRig): { stop(): Promise<BystanderResult> } {
  const result: BystanderResult = { ok: 0, failures: [] };
  let running = true;
  const auth = { authorization: `Bearer ${FUZZ_SK}` };
  const loop = (async () => {
    for (let i = 0; running; i++) {
      try {
        if (i % 2 === 0) {
          const res = await request(`${rig.gateway.url}/api/v1/containers`, { headers: auth, headersTimeout: 10_000, bodyTimeout: 10_000 });
          const body = (await res.body.json()) as { page_meta?: { total_count: number } };
          if (res.statusCode === 200 && body.page_meta !== undefined) result.ok += 1;
          else result.failures.push(`REST ${res.statusCode}`);
        } else {
          const res = await request(`${rig.gateway.url}/api/v1/r/containers/${FUZZ_SLUG}/echo/bystander-${i}`, { headers: auth, headersTimeout: 10_000, bodyTimeout: 10_000 });
          const body = (await res.body.json()) as { url?: string };
          if (res.statusCode === 201 && body.url === `/echo/bystander-${i}`) result.ok += 1;
          else result.failures.push(`proxied ${res.statusCode}`);
        }
      } catch (err) {
        result.failures.push(String(err));
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return result;
    },
  };
}
