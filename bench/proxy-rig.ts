import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { removeTestNetwork } from '../test/helpers/docker.js';
import { inspect, listByLabel, sweepByLabel } from '../test/helpers/engine.js';
import { gatewayClient } from '../test/helpers/gateway-client.js';
import { ensureNodeTestImage } from '../test/helpers/node-image.js';
import { REPO_ROOT } from '../test/helpers/repo-root.js';
import type { GcTotals } from './gc-probe.js';
import { quantile, type Measure } from './proxy-client.js';
import { startSshPeer } from './ssh-peer.js';

const SK = 'sk-bench-proxy-kkkkkkkkkkkk';
const AK = 'ak-bench-proxy-kkkkkkkkkkkk';
export const auth = { authorization: `Bearer ${SK}` };
/** The built CLI (npm run bench builds dist/ first). */
const BIN = path.join(REPO_ROOT, 'bin', 'cyberun-agent.js');

/**
 * One client on one connection, `n` requests one after another; resolves with the milliseconds
 * per request (each request wakes every process on its way alone). With `gapMs`, the client
 * pauses that long after each answer, so every process on the way has gone back to sleep (as a
 * polling client's requests, or a slow SSE stream's events, find them), and the result is the
 * median request's time.
 */
export async function oneByOne(url: string, headers: Record<string, string>, n: number, gapMs = 0): Promise<number> {
  const dispatcher = new Agent({ connections: 1 });
  const times: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await (await request(url, { headers, dispatcher })).body.text();
    if (gapMs === 0) continue;
    times.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  const total = performance.now() - t0;
  await dispatcher.close();
  return gapMs === 0 ? total / n : quantile(times, 0.5);
}

/** Runs one measurement in a worker thread (bench/proxy-client.ts). */
export function measure<T>(kind: Measure, url: string, headers: Record<string, string>): Promise<T> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./proxy-client.js', import.meta.url), { workerData: { kind, url, headers } });
    worker.once('message', (v: T) => resolve(v));
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new Error(`bench client exited with ${code}`)));
  });
}

/**
 * The NODE_OPTIONS the systemd unit runs the agent with, so the agent is measured as deployed
 * (CYBERUN_BENCH_AGENT_NODE_OPTIONS, even empty, replaces them for A/B runs).
 */
async function deployedNodeOptions(): Promise<string> {
  const unit = await readFile(path.join(REPO_ROOT, 'deploy', 'systemd', 'cyberun-agent.service'), 'utf8');
  return /^Environment=NODE_OPTIONS=(.*)$/m.exec(unit)?.[1]?.trim() ?? '';
}

const GC_PROBE = fileURLToPath(new URL('./gc-probe.js', import.meta.url));

/** Node arguments of a rig process: the variable's (e.g. --cpu-prof --cpu-prof-dir=/tmp/x), then the GC probe when asked. */
function nodeArgs(variable: string, gcFile: string | undefined): string[] {
  const args = (process.env[variable] ?? '').split(' ').filter(Boolean);
  return gcFile === undefined ? args : [...args, '--import', GC_PROBE];
}

/** Starts `cyberun-agent gateway --port 0` and reads its URLs from the line it prints. */
async function spawnGateway(dataDir: string, gcFile: string | undefined): Promise<{ child: ChildProcess; url: string; agentUrl: string }> {
  const child = spawn(process.execPath, [...nodeArgs('CYBERUN_BENCH_GATEWAY_NODE_ARGS', gcFile), BIN, 'gateway', '--port', '0', '--data-dir', dataDir], {
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', CYBERUN_GATEWAY_API_KEYS: SK, CYBERUN_GATEWAY_AGENT_KEYS: AK, ...(gcFile === undefined ? {} : { BENCH_GC_PROBE_FILE: gcFile }) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      err += String(chunk);
      const m = /REST API at (\S+)\/api\/v1, agents connect to (\S+)/.exec(err);
      if (m?.[1] && m[2]) resolve({ child, url: m[1], agentUrl: m[2] });
    });
    child.once('exit', (code) => reject(new Error(`the gateway exited with ${code}: ${err}`)));
  });
}

export interface Rig {
  direct: string;
  tunnel: string;
  /** The same replica through `ssh -L` (bench/ssh-peer.ts). */
  ssh: string;
  /** ssh's and sshd's pids at the time of the call (sshd forks per connection). */
  sshPids(): Promise<number[]>;
  /** The same service behind bench/min-proxy.ts (the floor of any Node proxy on this machine). */
  minProxy: string;
  minProxyPid: number;
  /** The same service behind bench/min-tunnel.ts (the floor of the tunnel's two-process shape). */
  minTunnel: string;
  minTunnelPids: number[];
  /** The same service behind bench/raw-tunnel.ts: that floor without ws and undici. */
  rawTunnel: string;
  rawTunnelPids: number[];
  /** Processes whose CPU time is the tunnel's cost. */
  pids: { gateway: number; agent: number };
  /** The agent's admin endpoint (unix socket in its state dir): /metrics shows its V8 heap by space. */
  agentAdminSocket: string;
  containerId: string;
  /** GC totals of gateway and agent so far; only with `setup({ gcProbe: true })` (bench/gc-probe.ts). */
  gcTotals(): Promise<{ gateway: GcTotals; agent: GcTotals }>;
  cleanup(): Promise<void>;
}

/** One way to the rig's replica, with the processes whose CPU is that path's own cost. */
export interface RigPath {
  name: string;
  url: string;
  headers: Record<string, string>;
  pids(): Promise<number[]>;
}

/** The rig's paths, by key (bench/proxy-seq.ts and bench/proxy-floor.ts pick theirs). */
export function rigPaths(rig: Rig): Record<'direct' | 'ssh' | 'minProxy' | 'minTunnel' | 'rawTunnel' | 'tunnel', RigPath> {
  return {
    direct: { name: 'direct', url: rig.direct, headers: {}, pids: async () => [] },
    ssh: { name: 'ssh -L', url: rig.ssh, headers: {}, pids: () => rig.sshPids() },
    minProxy: { name: 'minimal proxy', url: rig.minProxy, headers: {}, pids: async () => [rig.minProxyPid] },
    minTunnel: { name: 'minimal tunnel', url: rig.minTunnel, headers: {}, pids: async () => rig.minTunnelPids },
    rawTunnel: { name: 'minimal tunnel without ws and undici', url: rig.rawTunnel, headers: {}, pids: async () => rig.rawTunnelPids },
    tunnel: { name: 'tunnel', url: rig.tunnel, headers: auth, pids: async () => [rig.pids.gateway, rig.pids.agent] },
  };
}

/** Asks a process preloaded with bench/gc-probe.ts for its totals (SIGUSR2) and waits for the file. */
async function readGcTotals(pid: number, file: string, dumps: number): Promise<GcTotals> {
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 5_000;
  for (;;) {
    const totals = await readFile(file, 'utf8').then(
      (s) => JSON.parse(s) as GcTotals,
      () => undefined, // not written yet
    );
    if (totals !== undefined && totals.dumps === dumps) return totals;
    if (Date.now() > deadline) throw new Error(`process ${pid} wrote no GC totals to ${file} (was it started with the probe?)`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The first line a child prints on stdout (its port, or that it is ready). */
function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    child.stdout?.once('data', (chunk: Buffer) => resolve(String(chunk).trim()));
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
  });
}

/**
 * A floor of the tunnel's shape (bench/min-tunnel.ts, bench/raw-tunnel.ts) as its two processes:
 * `<script> front …`, whose first line is its HTTP port and what the back dials, then
 * `<script> back …` given that line; with CYBERUN_BENCH_MIN_NODE_ARGS (e.g. --cpu-prof). Resolves
 * once the back dialed in.
 */
async function startFloor(script: string, front: string[], back: (frontLine: string[]) => string[]): Promise<{ url: string; children: ChildProcess[] }> {
  const path = fileURLToPath(new URL(`./${script}`, import.meta.url));
  const node = (args: string[]) => spawn(process.execPath, [...nodeArgs('CYBERUN_BENCH_MIN_NODE_ARGS', undefined), path, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const frontChild = node(['front', ...front]);
  const line = (await firstLine(frontChild, `${script} front`)).split(' ');
  const backChild = node(['back', ...back(line)]);
  await firstLine(backChild, `${script} back`);
  return { url: `http://127.0.0.1:${line[0] ?? ''}`, children: [frontChild, backChild] };
}

/** bench/min-tunnel.ts to `upstream`, in a stream mode of its own when given. */
export function startMinTunnel(upstream: string, mode?: 'streams' | 'duplex'): Promise<{ url: string; children: ChildProcess[] }> {
  const modeArgs = mode === undefined ? [] : [mode];
  return startFloor('min-tunnel.js', modeArgs, ([port]) => [upstream, port ?? '', ...modeArgs]);
}

/** bench/raw-tunnel.ts to `upstream` (host:port), the back through undici when asked. */
export function startRawTunnel(upstream: string, backClient?: 'undici'): Promise<{ url: string; children: ChildProcess[] }> {
  return startFloor('raw-tunnel.js', [], ([, backPort]) => [upstream, backPort ?? '', ...(backClient === undefined ? [] : [backClient])]);
}

/** Rigs set up by this process so far (their names carry the count). */
let rigs = 0;

/**
 * Gateway and agent each run as their own process, as deployed (the agent with the unit's
 * NODE_OPTIONS); this process only drives load, from worker threads. The service is the node test
 * image, measured directly at its container address and through gateway → ws → agent.
 */
export async function setup(options: { gcProbe?: boolean } = {}): Promise<Rig> {
  await ensureNodeTestImage();
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'cyberun-bench-proxy-'));
  const gcFiles = options.gcProbe === true ? { gateway: path.join(stateDir, 'gc-gateway.json'), agent: path.join(stateDir, 'gc-agent.json') } : undefined;
  // Names of their own per rig: container names derive from the slug, a killed earlier run may
  // have left some, and bench/proxy-ab.ts runs two rigs in one process, each from its own copy of
  // this module (its own count), hence the random part.
  const tag = `${process.pid}-${++rigs}${randomBytes(2).toString('hex')}`;
  const network = `cyberun-bench-proxy-${tag}`;
  const agentId = `bench-proxy-${tag}`;
  const slug = `bench-proxy-${tag}`;
  // What the rig made, undone in reverse by cleanup() — or at once when a step of setup fails (an
  // agent that does not start, a replica that never runs), which left gateways running before.
  const undo: Array<() => Promise<void>> = [];
  const cleanup = async (): Promise<void> => {
    let failed: unknown;
    for (const step of undo.splice(0).reverse()) {
      await step().catch((err: unknown) => {
        failed ??= err;
      });
    }
    if (failed !== undefined) throw failed;
  };
  const stop = async (child: ChildProcess): Promise<void> => {
    child.kill('SIGTERM');
    if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
  };
  undo.push(() => rm(stateDir, { recursive: true, force: true }));
  // After the agent is stopped (it would start its replicas again): its containers and network.
  undo.push(async () => {
    await sweepByLabel(`cloud.cyberun.agent-id=${agentId}`);
    await removeTestNetwork(network);
  });
  try {
    return await startRig();
  } catch (err) {
    await cleanup().catch(() => undefined); // the setup's own failure is the one to report
    throw err;
  }

  async function startRig(): Promise<Rig> {
    const gateway = await spawnGateway(path.join(stateDir, 'gateway'), gcFiles?.gateway);
    undo.push(() => stop(gateway.child));
    const agent = spawn(process.execPath, [...nodeArgs('CYBERUN_BENCH_AGENT_NODE_ARGS', gcFiles?.agent), BIN, 'run', '--state-dir', path.join(stateDir, 'agent'), '--agent-id', agentId, '--gateway-url', gateway.agentUrl,
      '--set', `docker.network=${network}`, '--set', 'docker.addressing=ip', '--log-level', 'warn'], {
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: process.env['HOME'] ?? '/root',
        CYBERUN_AGENT_KEY: AK,
        NODE_OPTIONS: process.env['CYBERUN_BENCH_AGENT_NODE_OPTIONS'] ?? (await deployedNodeOptions()),
        ...(gcFiles === undefined ? {} : { BENCH_GC_PROBE_FILE: gcFiles.agent }),
      },
      cwd: stateDir,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    undo.push(() => stop(agent));
    const id = await gatewayClient(gateway.url, SK).deployRunning({ service_slug: slug, display_name: 'bench', docker_image: 'cyberun-test/node-http:1' });
    const [containerId] = await listByLabel(`cloud.cyberun.service-id=${id}`);
    const ip = containerId === undefined ? undefined : (await inspect(containerId))?.NetworkSettings.Networks[network]?.IPAddress;
    if (containerId === undefined || ip === undefined) throw new Error('no ready replica to measure directly');
    const minProxy = spawn(process.execPath, [fileURLToPath(new URL('./min-proxy.js', import.meta.url)), `http://${ip}:8080`], { stdio: ['ignore', 'pipe', 'inherit'] });
    undo.push(() => stop(minProxy));
    const minPort = await firstLine(minProxy, 'min-proxy');
    const minTunnel = await startMinTunnel(`http://${ip}:8080`);
    undo.push(async () => {
      for (const child of minTunnel.children) await stop(child);
    });
    const rawTunnel = await startRawTunnel(`${ip}:8080`);
    undo.push(async () => {
      for (const child of rawTunnel.children) await stop(child);
    });
    const ssh = await startSshPeer(`${ip}:8080`);
    undo.push(() => ssh.stop());
    let gcDumps = 0;
    const pids = { gateway: gateway.child.pid ?? 0, agent: agent.pid ?? 0 };
    return {
      agentAdminSocket: path.join(stateDir, 'agent', 'admin.sock'),
      ssh: ssh.url,
      sshPids: () => ssh.cpuPids(),
      minProxy: `http://127.0.0.1:${minPort}`,
      minProxyPid: minProxy.pid ?? 0,
      minTunnel: minTunnel.url,
      minTunnelPids: minTunnel.children.map((c) => c.pid ?? 0),
      rawTunnel: rawTunnel.url,
      rawTunnelPids: rawTunnel.children.map((c) => c.pid ?? 0),
      direct: `http://${ip}:8080`,
      tunnel: `${gateway.url}/api/v1/r/containers/${slug}`,
      pids,
      containerId,
      async gcTotals() {
        if (gcFiles === undefined) throw new Error('this rig was set up without the GC probe: setup({ gcProbe: true })');
        gcDumps++;
        return { gateway: await readGcTotals(pids.gateway, gcFiles.gateway, gcDumps), agent: await readGcTotals(pids.agent, gcFiles.agent, gcDumps) };
      },
      cleanup,
    };
  }
}

