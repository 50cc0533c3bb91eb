import { initialRestartState } from './backoff.js';
import { afterSetupFailure, type SetupFailureKind, type SetupPolicy } from './setup-failure.js';
import type { ReplicaMemory } from './replica-plan-types.js';

/** What the planner remembers of a replica between passes, and the events that change it from outside a pass. */

export function freshMemory(specHash: string): ReplicaMemory {
  return {
    specHash,
    restart: initialRestartState,
    lastDeath: undefined,
    expectedStop: undefined,
    lastExit: undefined,
    failedReason: undefined,
    setup: undefined,
  };
}

/**
 * Records a failure before the replica's container ran (the executor calls it: pull, create, start,
 * engine, name conflict). Not a death: the crash loop and restart count are untouched.
 */
export function recordSetupFailure(
  mem: ReplicaMemory | undefined,
  specHash: string,
  kind: SetupFailureKind,
  reason: string,
  policy: SetupPolicy,
  now: number,
  random: () => number,
): ReplicaMemory {
  const base = mem && mem.specHash === specHash ? mem : freshMemory(specHash);
  return { ...base, setup: afterSetupFailure(base.setup, kind, reason, now, policy, random) };
}

/**
 * Forgets why a replica failed, so the next pass tries at once (a deploy of a failed service,
 * `cyberun-agent retry`, new registry credentials). The restart count stays: it counts deaths.
 */
export function clearFailures(mem: ReplicaMemory): ReplicaMemory {
  return { ...mem, restart: { ...initialRestartState, totalRestarts: mem.restart.totalRestarts }, setup: undefined, failedReason: undefined, lastDeath: mem.lastDeath };
}

/** Forgets a failed pull (the host's registry credentials changed): the next pass pulls at once. */
export function clearPullFailures(mem: ReplicaMemory): ReplicaMemory {
  return mem.setup?.kind === 'pull-definitive' || mem.setup?.kind === 'pull-transient' ? { ...mem, setup: undefined } : mem;
}
