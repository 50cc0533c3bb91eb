import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { Agent } from '../src/agent.js';
import { loadConfig } from '../src/config/load-config.js';
import { createLogger } from '../src/log.js';
import { dockerAvailable, engineCall, removeTestNetwork } from '../test/helpers/docker.js';
import { ensureTestImages } from '../test/helpers/test-images.js';
import { sweepByLabel } from '../test/helpers/engine.js';
import { testDefinition } from '../test/helpers/test-definition.js';
import type { Benchmark, BenchResult } from './types.js';

const REPLICAS = 10;
const ROUNDS = 3;
const IMAGE = 'cyberun-test/busybox-http:1';

function engineJson(method: string, p: string, body: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = httpRequest({ socketPath: '/var/run/docker.sock', method, path: p, headers: { 'content-type': 'application/json', 'content-length': data.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function healthy(ip: string): Promise<boolean> {
  try {
    const res = await request(`http://${ip}:8080/health`, { signal: AbortSignal.timeout(1_000) });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}

/** Baseline: the same 10 containers created and started in parallel straight through the Engine API, polled every 50 ms until each answers /health. */
async function baseline(network: string, label: string): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: REPLICAS }, async (_, i) => {
      const created = await engineJson('POST', `/containers/create?name=bench-base-${i}-${Date.now()}`, {
        Image: IMAGE,
        Labels: { [label]: 'baseline' },
        ExposedPorts: { '8080/tcp': {} },
        HostConfig: { NetworkMode: network },
      });
      const id = (JSON.parse(created.body) as { Id: string }).Id;
      await engineJson('POST', `/containers/${id}/start`, {});
      const info = JSON.parse((await engineCall('GET', `/containers/${id}/json`)).body) as { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } };
      const ip = info.NetworkSettings.Networks[network]!.IPAddress;
      while (!(await healthy(ip))) await new Promise((r) => setTimeout(r, 50));
    }),
  );
  return performance.now() - t0;
}

async function viaAgent(agent: Agent, round: number): Promise<number> {
  const spec = testDefinition(`bench-${round}`, { replica_count: REPLICAS });
  const id = `bench-${round}`;
  const t0 = performance.now();
  const done = new Promise<void>((resolve) => {
    const off = agent.reconciler.onStatusChange((r) => {
      if (r.serviceId === id && r.state === 'running' && r.readyReplicas === REPLICAS) {
        off();
        resolve();
      }
    });
  });
  agent.reconciler.applyDesired([{ id, definition: spec }], round + 1, 'bench');
  await done;
  return performance.now() - t0;
}

export const deployBenchmark: Benchmark = {
  name: 'deploy',
  async available() {
    return (await dockerAvailable()) ? true : 'no Docker Engine at /var/run/docker.sock';
  },
  async run(): Promise<BenchResult[]> {
    await ensureTestImages();
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'cyberun-bench-'));
    const network = `cyberun-bench-${process.pid}`;
    const label = 'cloud.cyberun.bench';
    const { config } = await loadConfig({
      argv: ['--state-dir', stateDir, '--agent-id', `bench-${process.pid}`, '--set', `docker.network=${network}`, '--log-level', 'warn'],
      env: {},
      cwd: process.cwd(),
      searchPaths: [],
    });
    const agent = await Agent.start({ config, logger: createLogger({ level: 'warn' }) });
    const agentTimes: number[] = [];
    const baseTimes: number[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        baseTimes.push(await baseline(network, label));
        await sweepByLabel(label);
        agentTimes.push(await viaAgent(agent, round));
        agent.reconciler.applyDesired([], 100 + round, 'bench');
        await new Promise<void>((resolve) => {
          const check = setInterval(() => {
            if (agent.reconciler.statusSnapshot().length === 0) {
              clearInterval(check);
              resolve();
            }
          }, 100);
        });
      }
    } finally {
      await agent.stop();
      await sweepByLabel(`cloud.cyberun.agent-id=bench-${process.pid}`);
      await sweepByLabel(label);
      await removeTestNetwork(network);
      await rm(stateDir, { recursive: true, force: true });
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const value = median(agentTimes);
    const base = median(baseTimes);
    const ratio = value / base;
    return [{ name: `deploy: desired state → ${REPLICAS} replicas ready (median of ${ROUNDS})`, unit: 'ms', value: Math.round(value), baseline: Math.round(base), ratio, target: 'ratio <= 1.15', met: ratio <= 1.15 }];
  },
};
