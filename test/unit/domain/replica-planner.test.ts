import { describe, expect, it } from 'vitest';
import { clearFailures, planService, recordSetupFailure, stableName, surgeName, type PlanInput, type ProbeView, type ReplicaMemory } from '../../../src/domain/replica-planner.js';
import type { ObservedContainer } from '../../../src/domain/observed-container.js';
import { Labels } from '../../../src/domain/ownership-labels.js';

const T0 = Date.parse('2026-11-29T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const H = 'aaaaaaaaaaaaaaaa';
const OLD = 'bbbbbbbbbbbbbbbb';

let seq = 0;
function container(index: number, over: Partial<ObservedContainer> & { hash?: string } = {}): ObservedContainer {
  const { hash = H, ...rest } = over;
  seq += 1;
  return {
    id: `c${seq}`,
    name: stableName('web', index),
    image: 'img:1',
    labels: { [Labels.REPLICA]: String(index), [Labels.SPEC_HASH]: hash, [Labels.SERVICE_SLUG]: 'web' },
    state: 'running',
    createdAt: T0 - 60_000,
    startedAt: iso(T0 - 60_000),
    finishedAt: undefined,
    exitCode: undefined,
    oomKilled: false,
    error: undefined,
    ipAddress: '172.20.0.2',
    publishedPort: undefined,
    gpuDeviceIds: [],
    ...rest,
  };
}

function ready(c: ObservedContainer, over: Partial<ProbeView> = {}): [string, ProbeView] {
  return [c.id, { startedAt: c.startedAt ?? '', ready: true, everReady: true, consecutiveFailures: 0, lastError: undefined, ...over }];
}

function input(over: Partial<PlanInput> = {}): PlanInput {
  return {
    now: T0,
    random: () => 0.5,
    serviceSlug: 'web',
    desired: { replicaCount: 2, specHash: H, healthPath: '/health' },
    containers: [],
    probes: new Map(),
    memory: new Map(),
    policy: { pullBackoffBaseMs: 10_000, pullBackoffCapMs: 300_000, startBudgetMs: 20 * 60_000, failureThreshold: 3, restart: { backoffBaseMs: 1_000, backoffCapMs: 300_000, stableAfterMs: 600_000, crashLoopLimit: 5, failedRetryMs: 0 } },
    startFirst: true,
    ...over,
  };
}

const kinds = (r: ReturnType<typeof planService>) => r.actions.map((a) => `${a.kind}:${a.index}`).sort();

describe('planService', () => {
  it('creates every missing replica of a fresh service at once, with stable names', () => {
    const r = planService(input({ desired: { replicaCount: 3, specHash: H, healthPath: '/health' } }));
    expect(kinds(r)).toEqual(['create:0', 'create:1', 'create:2']);
    expect(r.actions.map((a) => (a.kind === 'create' ? a.name : ''))).toEqual(['cyberun-web-0', 'cyberun-web-1', 'cyberun-web-2']);
    expect(r.replicas.map((x) => x.phase)).toEqual(['creating', 'creating', 'creating']);
  });

  it('does nothing when every replica is current and ready', () => {
    const a = container(0);
    const b = container(1);
    const r = planService(input({ containers: [a, b], probes: new Map([ready(a), ready(b)]) }));
    expect(r.actions).toEqual([]);
    expect(r.replicas.map((x) => x.phase)).toEqual(['ready', 'ready']);
  });

  it('adopts running containers without restarting them (a probe that has not answered yet = starting)', () => {
    const a = container(0);
    const r = planService(input({ desired: { replicaCount: 1, specHash: H, healthPath: '/health' }, containers: [a] }));
    expect(r.actions).toEqual([]);
    expect(r.replicas[0]?.phase).toBe('starting');
  });

  it.each([
    ['scale down removes the highest indices', 1, ['remove:1']],
    ['removal removes everything', undefined, ['remove:0', 'remove:1']],
  ])('%s', (_name, count, expected) => {
    const a = container(0);
    const b = container(1);
    const r = planService(input({ desired: count === undefined ? undefined : { replicaCount: count, specHash: H, healthPath: '/health' }, containers: [a, b], probes: new Map([ready(a), ready(b)]) }));
    expect(kinds(r)).toEqual(expected);
  });

  it('removes duplicates of one index, keeping the running one', () => {
    const a = container(0);
    const dup = container(0, { state: 'exited', createdAt: T0 - 1_000 });
    const r = planService(input({ desired: { replicaCount: 1, specHash: H, healthPath: '/health' }, containers: [a, dup], probes: new Map([ready(a)]) }));
    expect(r.actions).toEqual([{ kind: 'remove', index: 0, containerId: dup.id, reason: 'duplicate replica' }]);
  });

  describe('rolling update', () => {
    it('starts one replacement beside the old replica (start-first), under a surge name', () => {
      const a = container(0, { hash: OLD });
      const b = container(1, { hash: OLD });
      const r = planService(input({ containers: [a, b], probes: new Map([ready(a), ready(b)]) }));
      expect(r.actions).toEqual([{ kind: 'create', index: 0, name: surgeName('web', 0, H), reason: expect.any(String) }]);
      expect(r.replicas.map((x) => x.phase)).toEqual(['ready', 'ready']);
    });

    it('waits while the replacement is not ready, and does not touch the next replica', () => {
      const a = container(0, { hash: OLD });
      const b = container(1, { hash: OLD });
      const n = container(0, { name: surgeName('web', 0, H) });
      const r = planService(input({ containers: [a, b, n], probes: new Map([ready(a), ready(b)]) }));
      expect(r.actions).toEqual([]);
    });

    it('removes the old replica once its replacement is ready, then moves on', () => {
      const a = container(0, { hash: OLD });
      const b = container(1, { hash: OLD });
      const n = container(0, { name: surgeName('web', 0, H) });
      const r = planService(input({ containers: [a, b, n], probes: new Map([ready(a), ready(b), ready(n)]) }));
      expect(kinds(r)).toEqual(['create:1', 'remove:0']);
    });

    it('renames the surge container to the stable name once the old one is gone', () => {
      const n = container(0, { name: surgeName('web', 0, H) });
      const b = container(1);
      const r = planService(input({ containers: [n, b], probes: new Map([ready(n), ready(b)]) }));
      expect(r.actions).toEqual([{ kind: 'rename', index: 0, containerId: n.id, name: 'cyberun-web-0' }]);
    });

    it('stops the old replica first when a replacement cannot start beside it (GPUs)', () => {
      const a = container(0, { hash: OLD });
      const b = container(1, { hash: OLD });
      const r = planService(input({ containers: [a, b], probes: new Map([ready(a), ready(b)]), startFirst: false }));
      expect(kinds(r)).toEqual(['remove:0']);
      expect(r.replicas[0]?.phase).toBe('stopping');
      expect(r.replicas[1]?.phase).toBe('ready');
    });

    it('replaces a dead old replica at once, outside the rollout slot', () => {
      const a = container(0, { hash: OLD, state: 'exited', exitCode: 1, finishedAt: iso(T0 - 1000) });
      const r = planService(input({ desired: { replicaCount: 1, specHash: H, healthPath: '/health' }, containers: [a] }));
      expect(kinds(r)).toEqual(['create:0', 'remove:0']);
    });
  });

  describe('restarts and backoff', () => {
    const exited = (over: Partial<ObservedContainer> = {}) =>
      container(0, { state: 'exited', exitCode: 3, startedAt: iso(T0 - 2_000), finishedAt: iso(T0 - 1_000), ...over });
    const one = { replicaCount: 1, specHash: H, healthPath: '/health' };

    it('a crashed container waits a full-jitter backoff, then is started again', () => {
      const c = exited({ finishedAt: iso(T0 - 100) });
      const first = planService(input({ desired: one, containers: [c], random: () => 0.5 }));
      // attempt 0: delay = 0.5 * min(cap, 1000 * 2^0) = 500 ms after death
      expect(first.actions).toEqual([]);
      expect(first.replicas[0]).toMatchObject({ phase: 'backoff', restartCount: 1 });
      expect(first.wakeAt).toBe(T0 - 100 + 500);
      const later = planService(input({ desired: one, containers: [c], memory: first.memory, now: T0 + 400 }));
      expect(later.actions).toEqual([{ kind: 'start', index: 0, containerId: c.id, reason: 'exited with code 3' }]);
    });

    it('does not count the same death twice', () => {
      const c = exited();
      const a = planService(input({ desired: one, containers: [c] }));
      const b = planService(input({ desired: one, containers: [c], memory: a.memory, now: T0 + 5 }));
      expect(b.memory.get(0)?.restart.restarts).toBe(1);
    });

    it.each([
      [0, 0.999, 999],
      [1, 0.999, 1998],
      [3, 0.5, 4000],
      [20, 0.999, 299_700],
    ])('after %i earlier restarts the delay is random * min(cap, base*2^n): random %f → %i ms', (earlier, rnd, delay) => {
      const c = exited();
      const memory = new Map<number, ReplicaMemory>([[0, { specHash: H, restart: { restarts: earlier, notBefore: 0, totalRestarts: earlier }, lastDeath: undefined, expectedStop: undefined, lastExit: undefined, failedReason: undefined, setup: undefined }]]);
      const r = planService(input({ desired: one, containers: [c], memory, random: () => rnd, policy: { ...input().policy, restart: { ...input().policy.restart, crashLoopLimit: 100 } } }));
      expect(r.memory.get(0)?.restart.notBefore).toBe(T0 - 1_000 + delay);
    });

    it('a run longer than the stable period resets the count', () => {
      const c = exited({ startedAt: iso(T0 - 3_600_000) });
      const memory = new Map<number, ReplicaMemory>([[0, { specHash: H, restart: { restarts: 4, notBefore: 0, totalRestarts: 9 }, lastDeath: undefined, expectedStop: undefined, lastExit: undefined, failedReason: undefined, setup: undefined }]]);
      const r = planService(input({ desired: one, containers: [c], memory }));
      expect(r.memory.get(0)?.restart).toMatchObject({ restarts: 1, totalRestarts: 10 });
    });

    it('a crash loop becomes failed, asks once for the logs, and never restarts hot', () => {
      const c = exited();
      const memory = new Map<number, ReplicaMemory>([[0, { specHash: H, restart: { restarts: 4, notBefore: 0, totalRestarts: 4 }, lastDeath: undefined, expectedStop: undefined, lastExit: undefined, failedReason: undefined, setup: undefined }]]);
      const r = planService(input({ desired: one, containers: [c], memory }));
      expect(r.actions).toEqual([{ kind: 'fail', index: 0, containerId: c.id, exit: 'exited with code 3' }]);
      expect(r.replicas[0]?.phase).toBe('failed');
      const withReason = new Map(r.memory);
      withReason.set(0, { ...r.memory.get(0)!, failedReason: 'exited with code 3; last log lines: x' });
      const again = planService(input({ desired: one, containers: [c], memory: withReason, now: T0 + 3_600_000 }));
      expect(again.actions).toEqual([]);
      expect(again.replicas[0]).toMatchObject({ phase: 'failed', reason: 'crash loop: exited with code 3; last log lines: x' });
      expect(again.wakeAt).toBeUndefined();
    });

    describe('restart.failed_retry', () => {
      const RETRY = 600_000;
      const retrying = (over: Partial<PlanInput>) => input({ desired: one, policy: { ...input().policy, restart: { ...input().policy.restart, failedRetryMs: RETRY } }, ...over });
      /** Memory of a replica failed after 5 restarts, the death of `c` (if any) already counted. */
      const looping = (failedReason: string | undefined, c?: ObservedContainer) =>
        new Map<number, ReplicaMemory>([[0, { specHash: H, restart: { restarts: 5, notBefore: T0 - 500, totalRestarts: 5 }, lastDeath: c ? `${c.id}@${c.finishedAt ?? ''}@` : undefined, expectedStop: undefined, lastExit: 'exited with code 3', failedReason, setup: undefined }]]);

      it('a failed replica says when it is tried next, and wakes the worker then', () => {
        const c = exited();
        const r = planService(retrying({ containers: [c], memory: looping('exited with code 3; last log lines: x', c) }));
        expect(r.actions).toEqual([]);
        expect(r.replicas[0]).toMatchObject({ phase: 'failed', reason: `crash loop (next try at ${iso(T0 - 500 + RETRY)}): exited with code 3; last log lines: x` });
        expect(r.wakeAt).toBe(T0 - 500 + RETRY);
        const justBefore = planService(retrying({ containers: [c], memory: looping('x', c), now: T0 - 500 + RETRY - 1 }));
        expect(justBefore.actions).toEqual([]);
      });

      it('once due, the stopped container is started again, and the start says why', () => {
        const c = exited();
        const r = planService(retrying({ containers: [c], memory: looping('exited with code 3; last log lines: x', c), now: T0 - 500 + RETRY }));
        expect(r.actions).toEqual([{ kind: 'start', index: 0, containerId: c.id, reason: 'trying a failed replica again (restart.failed_retry)' }]);
        expect(r.replicas[0]?.phase).toBe('crashed');
      });

      it('waits for the failure to be recorded (its log lines) before trying again', () => {
        const c = exited();
        const r = planService(retrying({ containers: [c], memory: looping(undefined, c), now: T0 + 10 * RETRY }));
        expect(r.actions).toEqual([{ kind: 'fail', index: 0, containerId: c.id, exit: 'exited with code 3' }]);
      });

      it('a missing container of a failed replica is created again when due', () => {
        const before = planService(retrying({ memory: looping(undefined) }));
        expect(before.actions).toEqual([]);
        expect(before.replicas[0]).toMatchObject({ phase: 'failed', reason: expect.stringContaining(`next try at ${iso(T0 - 500 + RETRY)}`) });
        const due = planService(retrying({ memory: looping(undefined), now: T0 - 500 + RETRY }));
        expect(due.actions).toEqual([{ kind: 'create', index: 0, name: 'cyberun-web-0', reason: 'trying a failed replica again (restart.failed_retry)' }]);
      });

      it('a retry that dies at once is failed again, with the next try a whole interval later', () => {
        const c = exited();
        const dead = { ...c, startedAt: iso(T0 + RETRY), finishedAt: iso(T0 + RETRY + 200) };
        const r = planService(retrying({ containers: [dead], memory: looping('old'), now: T0 + RETRY + 300, random: () => 0.5 }));
        expect(r.actions).toEqual([{ kind: 'fail', index: 0, containerId: c.id, exit: 'exited with code 3' }]);
        // restarts 5 → 6: delay 0.5 * min(300 s cap, 1 s * 2^5) = 16 s after the death, then RETRY.
        const notBefore = T0 + RETRY + 200 + 16_000;
        expect(r.memory.get(0)?.restart).toMatchObject({ restarts: 6, notBefore, totalRestarts: 6 });
        expect(r.replicas[0]).toMatchObject({ phase: 'failed', reason: `crash loop (next try at ${iso(notBefore + RETRY)}): exited with code 3` });
      });

      it('a retry that runs past the stable period starts over with a normal backoff when it dies', () => {
        const c = exited();
        const dead = { ...c, startedAt: iso(T0), finishedAt: iso(T0 + 3_600_000) };
        const r = planService(retrying({ containers: [dead], memory: looping('old'), now: T0 + 3_600_100 }));
        expect(r.memory.get(0)?.restart.restarts).toBe(1);
        expect(r.replicas[0]?.phase).toBe('backoff');
      });
    });

    it('a new spec starts from a clean slate', () => {
      const memory = new Map<number, ReplicaMemory>([[0, { specHash: OLD, restart: { restarts: 5, notBefore: T0 + 10_000, totalRestarts: 5 }, lastDeath: undefined, expectedStop: undefined, lastExit: 'x', failedReason: 'y', setup: undefined }]]);
      const r = planService(input({ desired: one, memory }));
      expect(kinds(r)).toEqual(['create:0']);
    });

    it('a failed start backs off in its own class: no restart counted, never the crash loop', () => {
      const c = container(0, { state: 'created', startedAt: '0001-01-01T00:00:00Z', error: 'could not select device driver "" with capabilities: [[gpu]]', exitCode: 128 });
      const mem = recordSetupFailure(undefined, H, 'start', 'start container x failed: could not select device driver', input().policy, T0, () => 0.5);
      const r = planService(input({ desired: one, containers: [c], memory: new Map([[0, mem]]) }));
      expect(r.actions).toEqual([]);
      expect(r.replicas[0]).toMatchObject({ phase: 'backoff', restartCount: 0, reason: expect.stringContaining('could not select device driver') });
      expect(r.wakeAt).toBe(mem.setup?.retryAt);
      const due = planService(input({ desired: one, containers: [c], memory: new Map([[0, mem]]), now: mem.setup!.retryAt }));
      expect(due.actions).toEqual([{ kind: 'start', index: 0, containerId: c.id, reason: expect.stringContaining('trying again after') }]);
    });

    it('a container created but never started (agent died in between) is started', () => {
      const c = container(0, { state: 'created', startedAt: '0001-01-01T00:00:00Z' });
      const r = planService(input({ desired: one, containers: [c] }));
      expect(r.actions).toEqual([{ kind: 'start', index: 0, containerId: c.id, reason: 'created but not started' }]);
    });
  });

  describe('health', () => {
    const one = { replicaCount: 1, specHash: H, healthPath: '/health' };
    it('unhealthy after ready (failures reach the threshold) → stopped for a restart, death counted once', () => {
      const c = container(0);
      const r = planService(input({ desired: one, containers: [c], probes: new Map([ready(c, { ready: false, consecutiveFailures: 3, lastError: 'HTTP 500' })]) }));
      expect(r.actions).toEqual([{ kind: 'stop', index: 0, containerId: c.id, reason: expect.stringContaining('HTTP 500') }]);
      expect(r.replicas[0]?.phase).toBe('unhealthy');
      const stopped = { ...c, state: 'exited' as const, exitCode: 143, finishedAt: iso(T0 + 100) };
      const after = planService(input({ desired: one, containers: [stopped], memory: r.memory, now: T0 + 200 }));
      expect(after.memory.get(0)?.restart.restarts).toBe(1);
    });

    it('below the threshold the replica keeps running', () => {
      const c = container(0);
      const r = planService(input({ desired: one, containers: [c], probes: new Map([ready(c, { ready: true, consecutiveFailures: 2, lastError: 'HTTP 500' })]) }));
      expect(r.actions).toEqual([]);
    });

    it('never healthy within the start budget → restarted; within it → starting with a wake-up at the budget', () => {
      const young = container(0, { startedAt: iso(T0 - 60_000) });
      const a = planService(input({ desired: one, containers: [young], probes: new Map([ready(young, { ready: false, everReady: false, lastError: 'ECONNREFUSED' })]) }));
      expect(a.actions).toEqual([]);
      expect(a.replicas[0]).toMatchObject({ phase: 'starting', reason: expect.stringContaining('ECONNREFUSED') });
      expect(a.wakeAt).toBe(T0 - 60_000 + 20 * 60_000 + 1);
      const old = container(0, { startedAt: iso(T0 - 21 * 60_000) });
      const b = planService(input({ desired: one, containers: [old], probes: new Map([ready(old, { ready: false, everReady: false })]) }));
      expect(b.actions.map((x) => x.kind)).toEqual(['stop']);
    });

    it('a probe result from before a restart does not count', () => {
      const c = container(0, { startedAt: iso(T0 - 1_000) });
      const r = planService(input({ desired: one, containers: [c], probes: new Map([[c.id, { startedAt: iso(T0 - 90_000), ready: true, everReady: true, consecutiveFailures: 0, lastError: undefined }]]) }));
      expect(r.replicas[0]?.phase).toBe('starting');
    });
  });
  describe('failures before a container ran (setup-failure.ts)', () => {
    const one = { replicaCount: 1, specHash: H, healthPath: '/health' };
    const policy = input().policy;
    const failedRetry = { ...policy, restart: { ...policy.restart, failedRetryMs: 300_000 } };
    const after = (kind: Parameters<typeof recordSetupFailure>[2], times: number, p = policy) => {
      let mem: ReplicaMemory | undefined;
      for (let i = 0; i < times; i++) mem = recordSetupFailure(mem, H, kind, `pull of image "reg:5000/app:1" failed: ${kind}`, p, T0, () => 0.5);
      return new Map([[0, mem!]]);
    };

    it.each([
      [1, 10_000],
      [2, 20_000],
      [3, 40_000],
      [6, 300_000],
      [12, 300_000],
    ])('a transient pull failure #%i waits %i ms (10 s doubling, capped at 5 min), shown as pulling, never failed', (times, delay) => {
      const memory = after('pull-transient', times);
      expect(memory.get(0)?.setup?.retryAt).toBe(T0 + delay);
      const r = planService(input({ desired: one, memory }));
      expect(r.actions).toEqual([]);
      expect(r.replicas[0]).toMatchObject({ phase: 'pulling', restartCount: 0, reason: `pull of image "reg:5000/app:1" failed: pull-transient; retrying in ${delay / 1000} s` });
      expect(r.wakeAt).toBe(T0 + delay);
      const due = planService(input({ desired: one, memory, now: T0 + delay }));
      expect(due.actions).toEqual([{ kind: 'create', index: 0, name: 'cyberun-web-0', reason: expect.stringContaining('trying again after') }]);
    });

    it('a definitive pull failure fails the replica at once and is tried again on restart.failed_retry', () => {
      const memory = after('pull-definitive', 1, failedRetry);
      const r = planService(input({ desired: one, memory, policy: failedRetry }));
      expect(r.actions).toEqual([]);
      expect(r.replicas[0]).toMatchObject({ phase: 'failed', restartCount: 0, reason: expect.stringContaining(`next try at ${iso(T0 + 300_000)}`) });
      expect(r.wakeAt).toBe(T0 + 300_000);
      expect(planService(input({ desired: one, memory, policy: failedRetry, now: T0 + 300_000 })).actions.map((a) => a.kind)).toEqual(['create']);
    });

    it('with restart.failed_retry 0 a definitive pull failure waits for an outside event (deploy, retry)', () => {
      const memory = after('pull-definitive', 1);
      const r = planService(input({ desired: one, memory, now: T0 + 86_400_000 }));
      expect(r.actions).toEqual([]);
      expect(r.wakeAt).toBeUndefined();
      expect(r.replicas[0]?.reason).toContain('cyberun-agent retry');
      const cleared = new Map([[0, clearFailures(memory.get(0)!)]]);
      expect(planService(input({ desired: one, memory: cleared })).actions.map((a) => a.kind)).toEqual(['create']);
    });

    it.each([
      ['engine', 'backoff'],
      ['name-conflict', 'pending'],
    ] as const)('%s failures back off for ever as %s: never failed, however many', (kind, phase) => {
      const r = planService(input({ desired: one, memory: after(kind, 50) }));
      expect(r.replicas[0]).toMatchObject({ phase, restartCount: 0 });
    });

    it('start failures fail the replica after crash_loop_limit in a row, without counting restarts', () => {
      const below = planService(input({ desired: one, memory: after('start', 4) }));
      expect(below.replicas[0]).toMatchObject({ phase: 'backoff', restartCount: 0 });
      const at = planService(input({ desired: one, memory: after('start', 5, failedRetry), policy: failedRetry }));
      expect(at.replicas[0]).toMatchObject({ phase: 'failed', restartCount: 0, reason: expect.stringMatching(/^could not start 5 times in a row \(next try at /) });
    });

    it('a failure of another kind counts from 1 again', () => {
      let mem = recordSetupFailure(undefined, H, 'start', 'x', policy, T0, () => 0.5);
      mem = recordSetupFailure(mem, H, 'start', 'x', policy, T0, () => 0.5);
      mem = recordSetupFailure(mem, H, 'pull-transient', 'y', policy, T0, () => 0.5);
      expect(mem.setup).toMatchObject({ kind: 'pull-transient', attempts: 1 });
    });

    it('a running container clears the setup failure', () => {
      const c = container(0);
      const r = planService(input({ desired: one, containers: [c], memory: after('pull-transient', 3) }));
      expect(r.memory.get(0)?.setup).toBeUndefined();
    });

    it('a rolling update whose new image does not pull keeps the old replica serving and does not loop', () => {
      const old = container(0, { hash: OLD });
      const memory = after('pull-transient', 2);
      const r = planService(input({ desired: one, containers: [old], probes: new Map([ready(old)]), memory }));
      expect(r.actions).toEqual([]);
      expect(r.replicas[0]).toMatchObject({ phase: 'ready', containerId: old.id, reason: expect.stringContaining('rolling update held back') });
      expect(r.wakeAt).toBe(T0 + 20_000);
    });

    it('clearFailures keeps the restart count but forgets the crash loop', () => {
      const mem: ReplicaMemory = { specHash: H, restart: { restarts: 5, notBefore: T0 + 9_000, totalRestarts: 7 }, lastDeath: 'k', expectedStop: undefined, lastExit: 'x', failedReason: 'y', setup: undefined };
      expect(clearFailures(mem)).toMatchObject({ restart: { restarts: 0, notBefore: 0, totalRestarts: 7 }, failedReason: undefined, setup: undefined });
    });
  });
});
