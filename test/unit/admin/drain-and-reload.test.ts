import { describe, expect, it } from 'vitest';
import { DrainRegistry } from '../../../src/drain-registry.js';
import { diffConfig } from '../../../src/config/config-diff.js';
import { silentLogger } from '../../../src/log.js';
import { testConfig } from '../../helpers/agent-harness.js';

describe('DrainRegistry', () => {
  it('resolves at once when nothing is registered', async () => {
    const t0 = Date.now();
    expect(await new DrainRegistry(silentLogger()).drain(60_000)).toEqual({ drained: [], cut: [] });
    expect(Date.now() - t0).toBeLessThan(50);
  });

  it('waits for participants that finish in time', async () => {
    const drains = new DrainRegistry(silentLogger());
    let aborted = false;
    drains.register('proxy', async (deadline) => {
      await new Promise((r) => setTimeout(r, 50));
      aborted = deadline.aborted;
    });
    expect(await drains.drain(5_000)).toEqual({ drained: ['proxy'], cut: [] });
    expect(aborted).toBe(false);
  });

  it('tells a participant still busy at the deadline to cut, and goes on', async () => {
    const drains = new DrainRegistry(silentLogger());
    drains.register('proxy', (deadline) => new Promise((resolve) => deadline.addEventListener('abort', () => resolve())));
    const unregister = drains.register('gone', () => new Promise(() => undefined));
    unregister();
    const t0 = Date.now();
    expect(await drains.drain(100)).toEqual({ drained: [], cut: ['proxy'] });
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('runs once: a second call shares the first', async () => {
    const drains = new DrainRegistry(silentLogger());
    let calls = 0;
    drains.register('p', async () => void calls++);
    await Promise.all([drains.drain(100), drains.drain(100)]);
    await drains.drain(100);
    expect(calls).toBe(1);
  });
});

describe('diffConfig (SIGHUP)', () => {
  const base = testConfig('r', '/tmp/state');
  it.each([
    ['nothing', {}, [], []],
    ['labels and log level live', { agentLabels: ['eu'], logLevel: 'debug' as const }, ['agent_labels', 'log_level'], []],
    ['restart policy and pull timeouts live', { restart: { ...base.restart, crashLoopLimit: 9 }, pull: { ...base.pull, stallTimeoutMs: 1 } }, ['restart.crash_loop_limit', 'pull.stall_timeout'], []],
    ['start budget live, probe interval needs a restart', { health: { ...base.health, startBudgetMs: 1, intervalMs: 999 } }, ['health.start_budget'], ['health.interval']],
    ['gateway, network and key need a restart', { gatewayUrl: 'wss://g/x', docker: { ...base.docker, network: 'other' }, agentKey: 'ak-secret' }, [], ['gateway_url', 'docker.network', 'agent_key']],
  ])('%s', (_name, over, live, restart) => {
    const change = diffConfig(base, { ...base, ...over });
    expect(change.live.sort()).toEqual([...live].sort());
    expect(change.needsRestart.sort()).toEqual([...restart].sort());
    expect(JSON.stringify(change)).not.toContain('ak-secret');
  });
});
