import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetch } from 'undici';
import type { ReadyEndpoint } from '../../src/domain/status-types.js';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/gateway/gateway-server.js';
import { silentLogger } from '../../src/log.js';
import type { AgentStreams } from '../../src/proxy/agent-streams.js';
import { TunnelClient } from '../../src/tunnel/tunnel-client.js';
import { pattern, sha256Of } from './byte-streams.js';
import { FakeAgentCore, statusReport } from './fake-agent-core.js';
import { waitFor } from './wait-for.js';
import { proxyEndpointFor, type ProxyOptions } from './proxy-endpoint.js';
import { tempDir } from './temp-dirs.js';

export const SK = 'sk-proxy-test-kkkkkkkkkkkkk';
export const AK = 'ak-proxy-test-kkkkkkkkkkkkk';
/** The rig's agent; its key is issued for this id. */
export const RIG_AGENT_ID = 'proxy-host';

/** A FakeAgentCore whose ready endpoints the test sets. */
export class EndpointCore extends FakeAgentCore {
  endpoints = new Map<string, ReadyEndpoint[]>();
  override readyEndpoints(serviceId?: string): ReadyEndpoint[] {
    return this.endpoints.get(serviceId ?? '') ?? [];
  }
}

/**
 * A test upstream on 127.0.0.1 (a model server stand-in):
 *   /echo…        JSON {method, url, headers, body}, header x-upstream: yes, set-cookie ×2
 *   /sse?n=N      N events, one per 100 ms (text/event-stream)
 *   /bytes?n=N    N bytes (content-length), written with backpressure; `written` counts them
 *   /upload       counts and hashes the request body, answers {"bytes": N, "sha256": hex}
 *   /pattern?n=N&seed=S  N deterministic pseudo-random bytes (byte-streams.ts `pattern`)
 *   /redirect     302 to /echo
 *   /hang         never answers; `hung` counts such requests arriving and closing
 */
export interface Upstream {
  port: number;
  server: Server;
  /** Bytes /bytes handed to the socket so far (per last request). */
  written: { bytes: number; closed: boolean };
  /** Requests to /hang that arrived, and those whose connection closed since. */
  hung: { arrived: number; closed: number };
  close(): Promise<void>;
}

export function upstreamHandler(state: Upstream['written'], hung: Upstream['hung'] = { arrived: 0, closed: 0 }) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/hang') {
      hung.arrived++;
      res.once('close', () => hung.closed++);
      return;
    }
    if (url.pathname === '/sse') {
      const n = Number(url.searchParams.get('n') ?? '5');
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let i = 0;
      let timer: NodeJS.Timeout | undefined;
      const tick = (): void => {
        res.write(`id: ${i}\ndata: {"n":${i},"t":${Date.now()}}\n\n`);
        if (++i >= n) res.end();
        else timer = setTimeout(tick, 100);
      };
      // A client that went away stops its stream (as test/fixtures/node-http/server.js does).
      res.once('close', () => clearTimeout(timer));
      tick();
      return;
    }
    if (url.pathname === '/bytes') {
      const n = Number(url.searchParams.get('n') ?? '0');
      const chunk = Buffer.alloc(64 * 1024, 120);
      state.bytes = 0;
      state.closed = false;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(n) });
      res.once('close', () => {
        state.closed = true;
      });
      const write = (): void => {
        while (state.bytes < n) {
          const piece = n - state.bytes >= chunk.length ? chunk : chunk.subarray(0, n - state.bytes);
          state.bytes += piece.length;
          if (!res.write(piece)) {
            res.once('drain', write);
            return;
          }
        }
        res.end();
      };
      write();
      return;
    }
    if (url.pathname === '/upload') {
      void sha256Of(req).then(({ sha256, bytes }) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bytes, sha256 }));
      });
      return;
    }
    if (url.pathname === '/pattern') {
      const n = Number(url.searchParams.get('n') ?? '0');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(n) });
      pattern(n, Number(url.searchParams.get('seed') ?? '1')).pipe(res);
      return;
    }
    if (url.pathname === '/redirect') {
      res.writeHead(302, { location: '/echo?from=redirect' });
      res.end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(201, { 'content-type': 'application/json', 'x-upstream': 'yes', 'set-cookie': ['a=1', 'b=2'] });
      res.end(body);
    });
  };
}

export async function startUpstream(): Promise<Upstream> {
  const written = { bytes: 0, closed: false };
  const hung = { arrived: 0, closed: 0 };
  const server = createServer(upstreamHandler(written, hung));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    written,
    hung,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export interface ProxyRig {
  gateway: Gateway;
  client: TunnelClient;
  /** The agent's side of the proxied streams (its open exchanges: `activeStreams`). */
  agentStreams: AgentStreams;
  core: EndpointCore;
  dataDir: string;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Creates and deploys a service; resolves with its id once the gateway shows it running. */
  deploy(definition: Record<string, unknown>, endpoints?: ReadyEndpoint[]): Promise<string>;
  /** Deploys `slug` served by one replica at 127.0.0.1:`port`; resolves with its proxy base URL. */
  deployLocal(slug: string, port: number): Promise<string>;
  close(): Promise<void>;
}

/**
 * Real local gateway + real TunnelClient (with its proxy) over ws on 127.0.0.1; fake core. The
 * rig's agent key is issued for RIG_AGENT_ID; `gatewayOver.agentKeys` adds keys.
 */
export async function startProxyRig(proxy: ProxyOptions = {}, gatewayOver: Partial<GatewayOptions> = {}): Promise<ProxyRig> {
  const dataDir = await tempDir('proxy');
  const { agentKeys = [], ...over } = gatewayOver;
  const gateway = await startGateway({
    port: 0,
    dataDir,
    apiKeys: [SK],
    logger: silentLogger(),
    heartbeatIntervalMs: 200,
    ...over,
    agentKeys: [{ key: AK, agentId: RIG_AGENT_ID }, ...agentKeys],
  });
  const core = new EndpointCore();
  const agentStreams = proxyEndpointFor(core, proxy);
  const client = new TunnelClient({
    url: gateway.agentUrl,
    agentKey: AK,
    agentId: RIG_AGENT_ID,
    agentVersion: '0.1.0-test',
    labels: () => [],
    inventory: () => undefined,
    core,
    logger: silentLogger(),
    streams: agentStreams,
  });
  client.start();
  await waitFor('agent connected', () => client.currentState().kind === 'connected');
  const api: ProxyRig['api'] = async (method, path, body) => {
    const res = await fetch(`${gateway.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${SK}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return {
    gateway,
    client,
    agentStreams,
    core,
    dataDir,
    api,
    async deploy(definition, endpoints = []) {
      const created = await api('POST', '/containers', definition);
      const id = String(created.body['id']);
      core.endpoints.set(id, endpoints);
      await api('POST', `/containers/${id}/deploy`);
      const slug = String(definition['service_slug']);
      await waitFor('sync reached the agent', () => core.lastApplied()?.services.some((s) => s.id === id));
      await new Promise((r) => setTimeout(r, 5));
      core.emit(statusReport(id, slug, { readyReplicas: 1, state: 'running' }));
      await waitFor(`${slug} running`, async () => (await api('GET', `/r/containers/${slug}`)).body['service_status'] === 'running', 5_000);
      return id;
    },
    async deployLocal(this: ProxyRig, slug, port) {
      await this.deploy({ service_slug: slug, display_name: slug, docker_image: 'busybox:1' }, [{ serviceId: '', replicaIndex: 0, containerId: `c-${slug}`, host: '127.0.0.1', port }]);
      return `${gateway.url}/api/v1/r/containers/${slug}`;
    },
    async close() {
      await client.close();
      await gateway.close();
    },
  };
}
