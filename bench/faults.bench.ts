import { dockerAvailable } from '../test/helpers/docker.js';
import { ensureTestImages } from '../test/helpers/test-images.js';
import { agentKillScenario, KILLS } from './faults/agent-kill.js';
import { DROPS, failureCount, GATEWAY_RESTARTS, tunnelAndGatewayScenario } from './faults/tunnel-gateway.js';
import { DOCKERD_RESTARTS, dockerdRestartScenario } from './faults/dockerd-restart.js';
import type { Benchmark, BenchResult } from './types.js';

/**
 * `npm run bench -- faults`: the fault-injection suite of docs/reliability.md. Real engine, real
 * gateway and agent processes, everything on loopback. FAULTS_SEED fixes the seed (printed
 * otherwise); FAULTS_ONLY=kill,tunnel,gateway,dockerd runs a subset.
 */
const log = (s: string): void => {
  process.stdout.write(`${s}\n`);
};
const only = (name: string): boolean => {
  const list = (process.env['FAULTS_ONLY'] ?? '').split(',').filter(Boolean);
  return list.length === 0 || list.includes(name);
};
const zero = (name: string, value: number, unit = 'count'): BenchResult => ({ name, unit, value, baseline: undefined, ratio: undefined, target: 'value = 0', met: value === 0 });
const shown = (name: string, value: number, unit: string): BenchResult => ({ name, unit, value, baseline: undefined, ratio: undefined, target: '(reported)', met: true });
const range = (xs: number[]): string => (xs.length === 0 ? '-' : `${Math.min(...xs)}–${Math.max(...xs)}`);

export const faultsBenchmark: Benchmark = {
  name: 'faults',
  async available() {
    return (await dockerAvailable()) ? true : 'no Docker Engine at /var/run/docker.sock';
  },
  async run(): Promise<BenchResult[]> {
    await ensureTestImages();
    const seed = Number(process.env['FAULTS_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
    log(`  seed ${seed} (FAULTS_SEED=${seed} repeats the same schedule)`);
    const rows: BenchResult[] = [];
    if (only('kill')) {
      const t0 = Date.now();
      const k = await agentKillScenario(seed, log);
      log(`  agent SIGKILL: ${k.kills} kills in ${Math.round((Date.now() - t0) / 1000)} s; actions ${JSON.stringify(k.actions)}; converged in ${range(k.convergeMs)} ms`);
      rows.push(
        zero(`faults: agent SIGKILL ×${KILLS}, duplicate replicas`, k.duplicates),
        zero(`faults: agent SIGKILL ×${KILLS}, orphans left`, k.orphans),
        zero(`faults: agent SIGKILL ×${KILLS}, ready replicas restarted`, k.readyRestarts),
        zero(`faults: agent SIGKILL ×${KILLS}, not converged within 60 s`, k.unconverged),
        shown(`faults: agent SIGKILL, slowest convergence`, Math.max(0, ...k.convergeMs), 'ms'),
      );
    }
    if (only('tunnel') || only('gateway')) {
      const { tunnel: t, gateway: g } = await tunnelAndGatewayScenario(seed, log);
      log(`  tunnel drops: outcomes ${JSON.stringify(t.outcomes)}; traffic back after ${range(t.resumeMs)} ms; RSS MiB (after drop 20 → after drop 100) ${JSON.stringify(t.rssMiB)}`);
      log(`  gateway restarts: outcomes ${JSON.stringify(g.outcomes)}; traffic back after ${range(g.resumeMs)} ms`);
      const growth = (a: number, b: number) => Math.round((b - a) * 10) / 10;
      rows.push(
        zero(`faults: tunnel dropped ×${DROPS}, workload restarts`, t.workloadRestarts),
        zero(`faults: tunnel dropped ×${DROPS}, requests neither answered nor a clean 502/503/504`, failureCount(t.outcomes) + t.outcomes.refused, 'requests'),
        shown(`faults: tunnel dropped ×${DROPS}, requests answered by the replica`, t.outcomes.answered, 'requests'),
        shown(`faults: tunnel dropped ×${DROPS}, clean 502/503/504`, t.outcomes.clean5xx, 'requests'),
        shown(`faults: tunnel dropped, slowest return of traffic`, Math.max(...t.resumeMs), 'ms'),
        { name: 'faults: tunnel dropped, agent RSS after − before', unit: 'MiB', value: growth(t.rssMiB.agentBefore, t.rssMiB.agentAfter), baseline: t.rssMiB.agentBefore, ratio: t.rssMiB.agentAfter / t.rssMiB.agentBefore, target: 'growth <= 20 MiB', met: t.rssMiB.agentAfter - t.rssMiB.agentBefore <= 20 },
        { name: 'faults: tunnel dropped, gateway RSS after − before', unit: 'MiB', value: growth(t.rssMiB.gatewayBefore, t.rssMiB.gatewayAfter), baseline: t.rssMiB.gatewayBefore, ratio: t.rssMiB.gatewayAfter / t.rssMiB.gatewayBefore, target: 'growth <= 20 MiB', met: t.rssMiB.gatewayAfter - t.rssMiB.gatewayBefore <= 20 },
        zero(`faults: gateway restarted ×${GATEWAY_RESTARTS}, workload restarts`, g.workloadRestarts),
        zero(`faults: gateway restarted ×${GATEWAY_RESTARTS}, requests failed otherwise than refused/502/503/504`, failureCount(g.outcomes), 'requests'),
        shown(`faults: gateway restarted, refused while it was down`, g.outcomes.refused, 'requests'),
        shown(`faults: gateway restarted, slowest return of traffic`, Math.max(...g.resumeMs), 'ms'),
      );
    }
    if (only('dockerd')) {
      const d = await dockerdRestartScenario(`faults-${process.pid}`, log);
      log(`  dockerd restarts: back and serving after ${d.backMs.join(', ')} ms; outcomes ${JSON.stringify(d.outcomes)}`);
      rows.push(
        zero(`faults: nested dockerd restarted ×${DOCKERD_RESTARTS}, times the 2 replicas were not back and serving within 2 min`, d.backMs.filter((x) => Number.isNaN(x)).length),
        shown(`faults: nested dockerd restarted, slowest back and serving`, Math.max(...d.backMs), 'ms'),
        zero(`faults: nested dockerd restarted, requests neither answered nor a clean 502/503/504`, failureCount(d.outcomes) + d.outcomes.refused, 'requests'),
      );
    }
    return rows;
  },
};
