import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket, connect } from 'node:net';
import path from 'node:path';
import { request as httpRequest } from 'node:http';
import { REPO_ROOT } from '../../test/helpers/repo-root.js';
import { waitFor } from '../../test/helpers/wait-for.js';

/** Plumbing of the fault-injection suite (bench/faults.bench.ts): processes, a TCP relay, engine reads. */

export const SK = 'sk-bench-faults-kkkkkkkkkkkkkkkk';
export const AK = 'ak-bench-faults-kkkkkkkkkkkkkkkk';
const BIN = path.join(REPO_ROOT, 'bin', 'cyberun-agent.js');
const ENV = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root' };

/** VmRSS of a process in bytes (0 once it is gone). */
export function rssOf(pid: number | undefined): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid ?? 0}/status`, 'utf8'));
    return Number(m?.[1] ?? '0') * 1024;
  } catch {
    return 0;
  }
}

export const mib = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;

export { freePort } from '../../test/helpers/free-port.js';

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((r) => child.once('exit', r));
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  rss(): number;
  /** SIGTERM (SIGKILL after 10 s) or SIGKILL at once; resolves when it exited. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
}

function proc(child: ChildProcess): Proc {
  return {
    child,
    pid: child.pid ?? 0,
    rss: () => rssOf(child.pid),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited(child);
      clearTimeout(force);
    },
  };
}

/**
 * NODE_OPTIONS for a child from FAULTS_AGENT_NODE_OPTIONS / FAULTS_GATEWAY_NODE_OPTIONS, for A/B
 * runs (e.g. a capped old space, to tell retained memory from garbage); none when unset.
 */
function nodeOptionsFrom(variable: 'FAULTS_AGENT_NODE_OPTIONS' | 'FAULTS_GATEWAY_NODE_OPTIONS'): { NODE_OPTIONS?: string } {
  const flags = process.env[variable];
  return flags ? { NODE_OPTIONS: flags } : {};
}

export interface GatewayProc extends Proc {
  url: string;
}

/** `cyberun-agent gateway` on a fixed loopback port (so a restart comes back where agents dial). */
export async function spawnGateway(dataDir: string, port: number): Promise<GatewayProc> {
  await mkdir(dataDir, { recursive: true });
  const child = spawn(process.execPath, [BIN, 'gateway', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir], {
    env: { ...ENV, CYBERUN_GATEWAY_API_KEYS: SK, CYBERUN_GATEWAY_AGENT_KEYS: AK, ...nodeOptionsFrom('FAULTS_GATEWAY_NODE_OPTIONS') },
    // FAULTS_GATEWAY_LOG=<file> keeps the gateway's log (appended across restarts) for diagnosis.
    stdio: ['ignore', process.env['FAULTS_GATEWAY_LOG'] === undefined ? 'ignore' : openSync(process.env['FAULTS_GATEWAY_LOG'], 'a'), 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => {
    err = (err + String(c)).slice(-20_000);
  });
  const url = await waitFor('the gateway listening', () => {
    if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}: ${err}`);
    return /REST API at (\S+)\/api\/v1/.exec(err)?.[1];
  }, 30_000, 50);
  return { ...proc(child), url };
}

export interface AgentArgs {
  stateDir: string;
  agentId: string;
  gatewayUrl: string;
  network: string;
  /** Extra `--set k=v` pairs and flags. */
  extra?: string[];
}

/** `cyberun-agent run`, its own process (so it can be SIGKILLed), warn-level logs to a file descriptor we drop. */
export function spawnAgent(a: AgentArgs): Proc {
  const child = spawn(process.execPath, [BIN, 'run', '--state-dir', a.stateDir, '--agent-id', a.agentId, '--gateway-url', a.gatewayUrl,
    '--set', `docker.network=${a.network}`, '--set', 'health.interval=500ms', '--set', 'health.timeout=400ms', '--set', 'health.failure_threshold=2',
    '--set', 'restart.stop_timeout=2s', '--set', 'image_gc.enabled=false', '--log-level', process.env['FAULTS_LOG_LEVEL'] ?? 'error', ...(a.extra ?? [])], {
    env: { ...ENV, CYBERUN_AGENT_KEY: AK, ...nodeOptionsFrom('FAULTS_AGENT_NODE_OPTIONS') },
    cwd: a.stateDir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return proc(child);
}

/**
 * A loopback TCP relay between the agent and the gateway: `drop()` destroys every connection
 * through it at once (both directions, as a NAT timeout or a cable pull would), and the agent's
 * next dial goes through again.
 */
export class Relay {
  private server: Server;
  private pairs = new Set<[Socket, Socket]>();
  accepted = 0;
  port = 0;

  constructor(private targetPort: number) {
    this.server = createServer((inbound) => {
      this.accepted++;
      const outbound = connect(this.targetPort, '127.0.0.1');
      const pair: [Socket, Socket] = [inbound, outbound];
      this.pairs.add(pair);
      const end = () => {
        this.pairs.delete(pair);
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', end).on('close', end);
      outbound.on('error', end).on('close', end);
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get open(): number {
    return this.pairs.size;
  }

  /** Cuts every connection; returns how many. */
  drop(): number {
    const n = this.pairs.size;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
    return n;
  }

  async close(): Promise<void> {
    this.drop();
    await new Promise((r) => this.server.close(r));
  }
}

/** Where an Engine API answers: the host's unix socket or a nested engine's tcp address. */
export type EngineTarget = { socketPath: string } | { host: string; port: number };

export interface Ctr {
  id: string;
  serviceId: string;
  slug: string;
  index: number;
  state: string;
  spec: string;
}

/** Every container carrying `label`, with the replica labels the suite counts by. */
export function listContainers(target: EngineTarget, label: string): Promise<Ctr[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [label] }));
  return new Promise((resolve, reject) => {
    const req = httpRequest({ ...target, method: 'GET', path: `/containers/json?all=true&filters=${filters}`, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`list containers: HTTP ${res.statusCode}`));
        const rows = JSON.parse(Buffer.concat(chunks).toString()) as Array<{ Id: string; State: string; Labels: Record<string, string> }>;
        resolve(rows.map((r) => ({ id: r.Id, state: r.State, serviceId: r.Labels['cloud.cyberun.service-id'] ?? '', slug: r.Labels['cloud.cyberun.service-slug'] ?? '', index: Number(r.Labels['cloud.cyberun.replica'] ?? '-1'), spec: r.Labels['cloud.cyberun.spec-hash'] ?? '' })));
      });
    });
    req.on('timeout', () => req.destroy(new Error('list containers: no answer in 10 s')));
    req.on('error', reject);
    req.end();
  });
}

/** StartedAt of a container, or undefined when it is gone. */
export function startedAt(target: EngineTarget, id: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ ...target, method: 'GET', path: `/containers/${id}/json`, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(res.statusCode === 200 ? (JSON.parse(Buffer.concat(chunks).toString()) as { State: { StartedAt: string } }).State.StartedAt : undefined));
    });
    req.on('error', reject);
    req.end();
  });
}

/** id@StartedAt of each container in `ids`, to tell later whether any was replaced or restarted. */
export async function fingerprints(target: EngineTarget, ids: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const id of ids) out.set(id, `${id}@${(await startedAt(target, id)) ?? 'gone'}`);
  return out;
}

/** How many of the fingerprinted containers are gone or started again since. */
export async function restartedSince(target: EngineTarget, before: Map<string, string>): Promise<number> {
  const now = await fingerprints(target, [...before.keys()]);
  return [...before].filter(([id, fp]) => now.get(id) !== fp).length;
}
