import type { ObservedContainer } from './observed-container.js';
import type { Action, PlanInput, PlanResult, ReplicaMemory, ReplicaView } from './replica-plan-types.js';
import { freshMemory } from './replica-memory.js';
import { replicaIndexOf, specHashOf } from './ownership-labels.js';
import type { ReplicaPhase } from './status-types.js';
import { afterDeath, failedRetryAt, isCrashLoop } from './backoff.js';
import { heldBackBy, setupView, wakeFor } from './setup-failure.js';

/**
 * The pure heart of the deploy engine: desired spec + observed containers + probe results +
 * per-replica memory + now → actions, the next memory, and each replica's phase.
 *
 * No IO, no clock, no randomness of its own (kubelet `computePodActions`, Nomad `diffAllocs`).
 * The service worker observes, calls `planService`, stores the returned memory and hands the
 * actions to the executor; the planner is called again after every action and on every wake-up,
 * so each call only needs to take the next step.
 *
 * Rolling update (maxUnavailable 0, maxSurge 1 when `startFirst`): one replica index at a time,
 * and only while every replica that already runs the new spec is ready. With `startFirst` the new
 * container starts beside the old one under a surge name and is renamed to the stable name once
 * the old one is gone; without it (GPUs cannot be held twice) the old one is stopped first.
 */

export type { Action, PlanInput, PlanPolicy, PlanResult, ProbeView, ReplicaMemory, ReplicaView } from './replica-plan-types.js';
export { clearFailures, clearPullFailures, recordSetupFailure } from './replica-memory.js';

const NEVER = '0001-01-01T00:00:00Z';
const RETRY_REASON = 'trying a failed replica again (restart.failed_retry)';

export function stableName(slug: string, index: number): string {
  return `cyberun-${slug}-${index}`;
}

export function surgeName(slug: string, index: number, specHash: string): string {
  return `cyberun-${slug}-${index}-${specHash.slice(0, 8)}`;
}


function timeOf(iso: string | undefined, fallback: number): number {
  if (!iso || iso === NEVER) return fallback;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? fallback : t;
}

function isRunning(c: ObservedContainer): boolean {
  return c.state === 'running' || c.state === 'restarting' || c.state === 'paused';
}

function exitText(c: ObservedContainer): string {
  if (c.error) return `start failed: ${c.error}`;
  if (c.oomKilled) return `killed: out of memory (exit code ${c.exitCode ?? 137})`;
  return `exited with code ${c.exitCode ?? 'unknown'}`;
}

/** Prefer running, then most recently created: the one container of an index worth keeping. */
function byPreference(a: ObservedContainer, b: ObservedContainer): number {
  return Number(isRunning(b)) - Number(isRunning(a)) || b.createdAt - a.createdAt;
}

export function planService(input: PlanInput): PlanResult {
  const { now, desired, policy } = input;
  const actions: Action[] = [];
  const replicas: ReplicaView[] = [];
  const memory = new Map<number, ReplicaMemory>();
  let wakeAt: number | undefined;
  const wake = (t: number) => {
    wakeAt = wakeAt === undefined ? t : Math.min(wakeAt, t);
  };

  const byIndex = new Map<number, ObservedContainer[]>();
  for (const c of input.containers) {
    const i = replicaIndexOf(c);
    byIndex.set(i, [...(byIndex.get(i) ?? []), c]);
  }

  // Everything outside [0, replicaCount) goes: scale-down, removal, unparseable index labels.
  const count = desired?.replicaCount ?? 0;
  for (const [i, cs] of byIndex) {
    if (i >= 0 && i < count) continue;
    for (const c of cs) {
      const reason = desired ? `scaled down to ${count} replicas` : 'service removed';
      actions.push({ kind: 'remove', index: i, containerId: c.id, reason });
      replicas.push({ index: i, phase: 'stopping', reason, containerId: c.id, specHash: specHashOf(c), restartCount: 0 });
    }
  }
  if (!desired) return { actions, memory, replicas, wakeAt };

  const hash = desired.specHash;
  const isReady = (c: ObservedContainer) => {
    const p = input.probes.get(c.id);
    return isRunning(c) && p !== undefined && p.startedAt === c.startedAt && p.ready;
  };
  const current = (i: number) => (byIndex.get(i) ?? []).filter((c) => specHashOf(c) === hash).sort(byPreference);
  const outdated = (i: number) => (byIndex.get(i) ?? []).filter((c) => specHashOf(c) !== hash).sort(byPreference);

  // A rollout step may begin only when no replica of the new spec is still on its way to ready.
  let rolloutSlotFree = true;
  for (let i = 0; i < count; i++) {
    const cur = current(i)[0];
    if (cur && outdated(i).length > 0 && !isReady(cur)) rolloutSlotFree = false;
    if (cur && !isReady(cur) && Array.from({ length: count }, (_, j) => outdated(j).length).some((n) => n > 0)) {
      rolloutSlotFree = false;
    }
  }

  for (let i = 0; i < count; i++) {
    const prev = input.memory.get(i);
    let mem: ReplicaMemory = prev && prev.specHash === hash ? { ...prev } : freshMemory(hash);
    const [cur, ...extraCurrent] = current(i);
    const olds = outdated(i);
    const view = (phase: ReplicaPhase, reason: string | undefined, c: ObservedContainer | undefined) =>
      replicas.push({ index: i, phase, reason, containerId: c?.id, specHash: c === undefined ? undefined : specHashOf(c), restartCount: mem.restart.totalRestarts });

    for (const c of extraCurrent) actions.push({ kind: 'remove', index: i, containerId: c.id, reason: 'duplicate replica' });

    if (!cur) {
      const old = olds[0];
      if (old && isRunning(old)) {
        // Rolling replacement of a live old replica.
        for (const o of olds.slice(1)) actions.push({ kind: 'remove', index: i, containerId: o.id, reason: 'superseded' });
        if (!rolloutSlotFree) {
          view(isReady(old) ? 'ready' : 'starting', 'waiting for its turn in the rolling update', old);
          continue;
        }
        const holding = heldBackBy(mem.setup, now);
        if (holding !== undefined) {
          // The replacement could not be made (e.g. its image does not pull): the old replica keeps serving.
          const wakeAt = wakeFor(holding);
          if (wakeAt !== undefined) wake(wakeAt);
          view(isReady(old) ? 'ready' : 'starting', `rolling update held back: ${setupView(holding, now, policy).reason}`, old);
          memory.set(i, mem);
          continue;
        }
        rolloutSlotFree = false;
        if (input.startFirst) {
          const name = old.name === stableName(input.serviceSlug, i) ? surgeName(input.serviceSlug, i, hash) : stableName(input.serviceSlug, i);
          actions.push({ kind: 'create', index: i, name, reason: 'rolling update (new replica starts before the old one stops)' });
          view(isReady(old) ? 'ready' : 'starting', 'rolling update: replacement starting', old);
        } else {
          actions.push({ kind: 'remove', index: i, containerId: old.id, reason: 'rolling update (GPUs are freed before the replacement starts)' });
          view('stopping', 'rolling update: old replica stops first to free its GPUs', old);
        }
        continue;
      }
      // Nothing live: dead old containers just go, and a new one is created (after any backoff).
      for (const o of olds) actions.push({ kind: 'remove', index: i, containerId: o.id, reason: 'superseded' });
      const retryAt = failedRetryAt(mem.restart, policy.restart);
      const holding = heldBackBy(mem.setup, now);
      if (holding !== undefined) {
        const setupWake = wakeFor(holding);
        if (setupWake !== undefined) wake(setupWake);
        const shown = setupView(holding, now, policy);
        view(shown.phase, shown.reason, undefined);
      } else if (mem.setup !== undefined) {
        actions.push({ kind: 'create', index: i, name: stableName(input.serviceSlug, i), reason: `trying again after: ${mem.setup.reason}` });
        view('creating', undefined, undefined);
      } else if (isCrashLoop(mem.restart, policy.restart) && !(retryAt !== undefined && now >= retryAt)) {
        if (retryAt !== undefined) wake(retryAt);
        view('failed', failedText(mem.failedReason ?? mem.lastExit ?? 'failed', retryAt), undefined);
      } else if (now < mem.restart.notBefore) {
        wake(mem.restart.notBefore);
        view('backoff', `${mem.lastExit ?? 'failed'}; next attempt in ${Math.ceil((mem.restart.notBefore - now) / 1000)}s`, undefined);
      } else {
        const reason = isCrashLoop(mem.restart, policy.restart) ? RETRY_REASON : 'replica missing';
        actions.push({ kind: 'create', index: i, name: stableName(input.serviceSlug, i), reason });
        view('creating', undefined, undefined);
      }
      memory.set(i, mem);
      continue;
    }

    if (isRunning(cur)) {
      // A container runs: whatever held its setup back is over.
      if (mem.setup !== undefined) mem = { ...mem, setup: undefined };
      const probe = input.probes.get(cur.id);
      const fresh = probe !== undefined && probe.startedAt === cur.startedAt ? probe : undefined;
      const startedAt = timeOf(cur.startedAt, now);
      if (fresh?.ready) {
        for (const o of olds) actions.push({ kind: 'remove', index: i, containerId: o.id, reason: 'replaced by a ready replica of the new spec' });
        if (cur.name !== stableName(input.serviceSlug, i) && olds.every((o) => o.name !== stableName(input.serviceSlug, i))) {
          actions.push({ kind: 'rename', index: i, containerId: cur.id, name: stableName(input.serviceSlug, i) });
        }
        view('ready', undefined, cur);
      } else if (fresh?.everReady && fresh.consecutiveFailures >= policy.failureThreshold) {
        const why = `health check failed ${fresh.consecutiveFailures} times in a row (${fresh.lastError ?? 'no detail'})`;
        mem = stopForRestart(mem, cur, startedAt, now, why, input);
        actions.push({ kind: 'stop', index: i, containerId: cur.id, reason: why });
        view('unhealthy', why, cur);
      } else if (!fresh?.everReady && now - startedAt > policy.startBudgetMs) {
        const why = `not healthy within the start budget of ${Math.round(policy.startBudgetMs / 1000)}s (GET ${desired.healthPath}: ${fresh?.lastError ?? 'no answer yet'})`;
        mem = stopForRestart(mem, cur, startedAt, now, why, input);
        actions.push({ kind: 'stop', index: i, containerId: cur.id, reason: why });
        view('unhealthy', why, cur);
      } else {
        if (!fresh?.everReady) wake(startedAt + policy.startBudgetMs + 1);
        const why = fresh?.everReady
          ? `health check failing (${fresh.consecutiveFailures}/${policy.failureThreshold}): ${fresh.lastError ?? ''}`
          : `waiting for GET ${desired.healthPath} to answer 2xx${fresh?.lastError ? ` (last: ${fresh.lastError})` : ''}`;
        view('starting', why, cur);
      }
      memory.set(i, mem);
      continue;
    }

    // The current container is not running: never started, failed to start, exited or dead.
    const neverStarted = cur.state === 'created' && !cur.error;
    if (neverStarted || cur.error) {
      // It never ran: a setup failure (recorded by the executor) decides, never the crash loop.
      const holding = heldBackBy(mem.setup, now);
      if (holding !== undefined) {
        const setupWake = wakeFor(holding);
        if (setupWake !== undefined) wake(setupWake);
        const shown = setupView(holding, now, policy);
        view(shown.phase, shown.reason, cur);
      } else {
        for (const o of olds) if (!isRunning(o)) actions.push({ kind: 'remove', index: i, containerId: o.id, reason: 'superseded' });
        const reason = mem.setup !== undefined ? `trying again after: ${mem.setup.reason}` : neverStarted ? 'created but not started' : `start failed before: ${cur.error ?? ''}`;
        actions.push({ kind: 'start', index: i, containerId: cur.id, reason });
        view('creating', undefined, cur);
      }
      memory.set(i, mem);
      continue;
    }
    const key = `${cur.id}@${cur.finishedAt ?? ''}@`;
    if (mem.expectedStop === cur.id) {
      mem = { ...mem, expectedStop: undefined, lastDeath: key };
    } else if (mem.lastDeath !== key) {
      const died = timeOf(cur.finishedAt, now);
      mem = { ...mem, restart: afterDeath(mem.restart, policy.restart, timeOf(cur.startedAt, died), died, input.random), lastDeath: key, lastExit: exitText(cur), failedReason: undefined };
    }
    const retryAt = failedRetryAt(mem.restart, policy.restart);
    // A retry waits for the failure's log lines to be recorded (the `fail` action) first.
    if (isCrashLoop(mem.restart, policy.restart) && !(retryAt !== undefined && now >= retryAt && mem.failedReason !== undefined)) {
      if (mem.failedReason === undefined) actions.push({ kind: 'fail', index: i, containerId: cur.id, exit: mem.lastExit ?? exitText(cur) });
      if (retryAt !== undefined) wake(retryAt);
      view('failed', failedText(mem.failedReason ?? mem.lastExit ?? exitText(cur), retryAt), cur);
    } else if (now < mem.restart.notBefore) {
      wake(mem.restart.notBefore);
      view('backoff', `${mem.lastExit ?? exitText(cur)}; restarting in ${Math.ceil((mem.restart.notBefore - now) / 1000)}s`, cur);
    } else {
      for (const o of olds) {
        if (!isRunning(o)) actions.push({ kind: 'remove', index: i, containerId: o.id, reason: 'superseded' });
      }
      const reason = isCrashLoop(mem.restart, policy.restart) ? RETRY_REASON : (mem.lastExit ?? 'stopped');
      actions.push({ kind: 'start', index: i, containerId: cur.id, reason });
      view('crashed', mem.lastExit, cur);
    }
    memory.set(i, mem);
  }

  return { actions, memory, replicas, wakeAt };
}

/** A failed replica's reason: the crash loop, when it is tried next (if ever), and what it died of. */
function failedText(detail: string, retryAt: number | undefined): string {
  return `crash loop${retryAt === undefined ? '' : ` (next try at ${new Date(retryAt).toISOString()})`}: ${detail}`;
}

/** The agent decided to stop a live container: count the death now, and skip it when it is observed. */
function stopForRestart(
  mem: ReplicaMemory,
  c: ObservedContainer,
  startedAt: number,
  now: number,
  why: string,
  input: PlanInput,
): ReplicaMemory {
  return {
    ...mem,
    restart: afterDeath(mem.restart, input.policy.restart, startedAt, now, input.random),
    expectedStop: c.id,
    lastExit: why,
    failedReason: undefined,
  };
}
