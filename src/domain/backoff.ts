/**
 * Full-jitter exponential backoff (AWS architecture blog, "Exponential Backoff and Jitter"):
 * delay = random() * min(cap, base * 2^attempt). Pure: the caller passes `random` (a value in
 * [0, 1)) and schedules the delay itself.
 */
export function fullJitterBackoff(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, Math.min(attempt, 30)));
  return Math.floor(random() * exp);
}

/**
 * Restart bookkeeping of one replica. `restarts` counts restarts since the last stable period;
 * it resets once a container has run `stableAfterMs` without dying.
 */
export interface RestartState {
  restarts: number;
  /** Epoch ms before which the replica must not be restarted. */
  notBefore: number;
  /** Total restarts over the replica's life, for status. */
  totalRestarts: number;
}

export const initialRestartState: RestartState = { restarts: 0, notBefore: 0, totalRestarts: 0 };

export interface RestartPolicy {
  backoffBaseMs: number;
  backoffCapMs: number;
  stableAfterMs: number;
  crashLoopLimit: number;
  /** A failed (crash-looping) replica gets one more attempt this long after its last backoff; 0: never. */
  failedRetryMs: number;
}

/** Whether the replica is in a crash loop: too many restarts without a stable period between. */
export function isCrashLoop(state: RestartState, policy: RestartPolicy): boolean {
  return state.restarts >= policy.crashLoopLimit;
}

/**
 * When a replica in a crash loop gets its next single attempt, or undefined when failed replicas
 * are never retried. Like the kubelet's CrashLoopBackOff, a failed replica is not given up on: a
 * host-side cause (a registry outage, a driver reset, a mount not there yet) may have gone away.
 */
export function failedRetryAt(state: RestartState, policy: RestartPolicy): number | undefined {
  return policy.failedRetryMs > 0 ? state.notBefore + policy.failedRetryMs : undefined;
}

/**
 * The state after a container of this replica died at `diedAt`, having started at `startedAt`.
 * A run that lasted `stableAfterMs` or more resets the count first. The next restart is allowed
 * at diedAt + a full-jitter delay for the new count.
 */
export function afterDeath(
  state: RestartState,
  policy: RestartPolicy,
  startedAt: number,
  diedAt: number,
  random: () => number,
): RestartState {
  const base = diedAt - startedAt >= policy.stableAfterMs ? 0 : state.restarts;
  const delay = fullJitterBackoff(base, policy.backoffBaseMs, policy.backoffCapMs, random);
  return { restarts: base + 1, notBefore: diedAt + delay, totalRestarts: state.totalRestarts + 1 };
}
