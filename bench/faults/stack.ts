import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gatewayClient, type RuntimeRecord } from '../../test/helpers/gateway-client.js';
import { removeTestNetwork } from '../../test/helpers/docker.js';
import { sweepByLabel } from '../../test/helpers/engine.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import { freePort, listContainers, Relay, SK, spawnAgent, spawnGateway, type Ctr, type EngineTarget, type GatewayProc, type Proc } from './rig.js';

/** One scenario's world: a gateway process, an agent process (optionally behind a relay), its engine. */
export interface Stack {
  name: string;
  agentId: string;
  stateDir: string;
  gatewayPort: number;
  gateway: GatewayProc;
  agent: Proc;
  relay: Relay | undefined;
  api: ReturnType<typeof gatewayClient>;
  engine: EngineTarget;
  /** The gateway's agent URL the agent dials (through the relay when there is one). */
  dialUrl: string;
  startAgent(): Proc;
  restartGateway(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  ours(): Promise<Ctr[]>;
  runtime(slug: string): Promise<RuntimeRecord>;
  /** Waits until `slug` is running with `replicas` ready on the gateway; returns its containers. */
  waitRunning(slug: string, replicas: number, timeoutMs?: number): Promise<Ctr[]>;
  cleanup(): Promise<void>;
}

export interface StackOptions {
  relay?: boolean;
  engine?: EngineTarget;
  /** Extra agent flags (e.g. --docker-host). */
  agentExtra?: string[];
  network?: string;
}

export async function startStack(name: string, opts: StackOptions = {}): Promise<Stack> {
  const base = await mkdtemp(path.join(os.tmpdir(), `cyberun-faults-${name}-`));
  const agentId = `faults-${name}-${process.pid}`;
  const network = opts.network ?? `cyberun-faults-${name}-${process.pid}`;
  const gatewayPort = await freePort();
  const gatewayDir = path.join(base, 'gateway');
  const stateDir = path.join(base, 'agent');
  await mkdir(stateDir, { recursive: true });
  const gateway = await spawnGateway(gatewayDir, gatewayPort);
  const relay = opts.relay === true ? await new Relay(gatewayPort).listen() : undefined;
  const dialUrl = `ws://127.0.0.1:${relay?.port ?? gatewayPort}/api/v1/agent/connect`;
  const engine = opts.engine ?? { socketPath: '/var/run/docker.sock' };
  const startAgent = () => spawnAgent({ stateDir, agentId, gatewayUrl: dialUrl, network, extra: opts.agentExtra });
  const api = gatewayClient(gateway.url, SK);
  const stack: Stack = {
    name,
    agentId,
    stateDir,
    gatewayPort,
    gateway,
    agent: startAgent(),
    relay,
    api,
    engine,
    dialUrl,
    startAgent,
    async restartGateway(signal = 'SIGTERM') {
      await stack.gateway.stop(signal);
      stack.gateway = await spawnGateway(gatewayDir, gatewayPort);
    },
    ours: () => listContainers(engine, `cloud.cyberun.agent-id=${agentId}`),
    runtime: async (slug) => (await api.runtime(slug)).body,
    async waitRunning(slug, replicas, timeoutMs = 60_000) {
      return waitFor(`${slug} running with ${replicas} ready`, async () => {
        const r = await stack.runtime(slug);
        if (r.service_status !== 'running' || r.status_detail?.ready_replicas !== replicas) return undefined;
        const mine = (await stack.ours()).filter((c) => c.slug === slug && c.state === 'running');
        return mine.length === replicas ? mine : undefined;
      }, timeoutMs, 100);
    },
    async cleanup() {
      await stack.agent.stop();
      await stack.gateway.stop();
      await relay?.close();
      if (!('host' in engine)) {
        await sweepByLabel(`cloud.cyberun.agent-id=${agentId}`);
        await removeTestNetwork(network).catch(() => undefined);
      }
      await rm(base, { recursive: true, force: true });
    },
  };
  return stack;
}

/** A deployed busybox-http service definition for the gateway's REST API. */
export function serviceBody(slug: string, replicas: number, generation = 0): Record<string, unknown> {
  return {
    service_slug: slug,
    display_name: slug,
    docker_image: 'cyberun-test/busybox-http:1',
    exposed_port: 8080,
    health_path: '/health',
    replica_count: replicas,
    env_config: [{ env_name: 'GENERATION', env_value: String(generation) }],
  };
}
