import { fullJitterBackoff, type RestartPolicy } from './backoff.js';
import type { ReplicaPhase } from './status-types.js';

/**
 * Failures before a replica's container ever ran, one class per cause, each with its own reason,
 * backoff and counter (the kubelet keeps ErrImagePull/ImagePullBackOff, CreateContainerError and
 * CrashLoopBackOff apart the same way). None of them is a restart: `restart_count` and the crash
 * loop count only containers that ran and exited (backoff.ts). Pure.
 *
 * | kind            | cause                                              | retried                                 | phase            |
 * |-----------------|----------------------------------------------------|-----------------------------------------|------------------|
 * | pull-transient  | registry unreachable, DNS, timeouts, stalls, 5xx   | 10 s doubling to 5 min, for ever        | pulling          |
 * | pull-definitive | manifest unknown, unauthorized/denied, bad ref     | every restart.failed_retry; on deploy,  | failed           |
 * |                 |                                                    | update, `retry`, registry auth change   |                  |
 * | start           | create/start refused (GPU runtime, a bind source)  | restart backoff; failed after           | backoff → failed |
 * |                 |                                                    | crash_loop_limit, then every failed_retry |                |
 * | engine          | the Docker Engine is unreachable or timed out      | restart backoff, for ever (not ours)    | backoff          |
 * | name-conflict   | the replica's name is held by a container that is  | restart backoff, for ever               | pending          |
 * |                 | not this agent's                                   |                                         |                  |
 */
export type SetupFailureKind = 'pull-transient' | 'pull-definitive' | 'start' | 'engine' | 'name-conflict';

export interface SetupFailure {
  kind: SetupFailureKind;
  /** Consecutive failures of this kind; a failure of another kind starts again at 1. */
  attempts: number;
  /** Epoch ms of the last failure. */
  at: number;
  /** No new attempt before this (epoch ms); Infinity: only after an outside event (deploy, retry). */
  retryAt: number;
  /** What failed, for people (the error's message: names the image, the engine's reason). */
  reason: string;
}

export interface SetupPolicy {
  /** First delay of a transient pull failure; doubles per failure. Default 10 s. */
  pullBackoffBaseMs: number;
  /** Longest delay between pull attempts. Default 5 min. */
  pullBackoffCapMs: number;
  restart: RestartPolicy;
}

export const DEFAULT_PULL_BACKOFF = { pullBackoffBaseMs: 10_000, pullBackoffCapMs: 300_000 } as const;

/** The failure after `previous`: counts consecutive failures of one kind and schedules the next try. */
export function afterSetupFailure(
  previous: SetupFailure | undefined,
  kind: SetupFailureKind,
  reason: string,
  now: number,
  policy: SetupPolicy,
  random: () => number,
): SetupFailure {
  const attempts = previous?.kind === kind ? previous.attempts + 1 : 1;
  return { kind, attempts, at: now, retryAt: now + retryDelay(kind, attempts, policy, random), reason };
}

function retryDelay(kind: SetupFailureKind, attempts: number, policy: SetupPolicy, random: () => number): number {
  const { restart } = policy;
  switch (kind) {
    case 'pull-transient': {
      // Doubling with ±10 % jitter, so agents that lost one registry together do not retry in step.
      const delay = Math.min(policy.pullBackoffCapMs, policy.pullBackoffBaseMs * 2 ** Math.min(attempts - 1, 30));
      return Math.round(delay * (0.9 + 0.2 * random()));
    }
    case 'pull-definitive':
      return restart.failedRetryMs > 0 ? restart.failedRetryMs : Number.POSITIVE_INFINITY;
    case 'start':
      if (attempts >= restart.crashLoopLimit) return restart.failedRetryMs > 0 ? restart.failedRetryMs : Number.POSITIVE_INFINITY;
      return Math.max(restart.backoffBaseMs, fullJitterBackoff(attempts - 1, restart.backoffBaseMs, restart.backoffCapMs, random));
    case 'engine':
    case 'name-conflict':
      return Math.max(restart.backoffBaseMs, fullJitterBackoff(attempts - 1, restart.backoffBaseMs, restart.backoffCapMs, random));
  }
}

/** The failure, when it still holds back a new attempt at `now`. */
export function heldBackBy(failure: SetupFailure | undefined, now: number): SetupFailure | undefined {
  return failure !== undefined && now < failure.retryAt ? failure : undefined;
}

/** When the worker must wake to try again, or undefined when only an outside event retries it. */
export function wakeFor(failure: SetupFailure): number | undefined {
  return Number.isFinite(failure.retryAt) ? failure.retryAt : undefined;
}

/** The phase and reason a replica held back by `failure` shows. */
export function setupView(failure: SetupFailure, now: number, policy: SetupPolicy): { phase: ReplicaPhase; reason: string } {
  const wake = wakeFor(failure);
  const inSeconds = wake === undefined ? '' : `${Math.max(1, Math.ceil((wake - now) / 1000))} s`;
  const nextTry = wake === undefined ? 'deploy again or run `cyberun-agent retry` to try again' : `next try at ${new Date(wake).toISOString()}`;
  switch (failure.kind) {
    case 'pull-transient':
      return { phase: 'pulling', reason: `${failure.reason}; retrying in ${inSeconds}` };
    case 'pull-definitive':
      return { phase: 'failed', reason: `${failure.reason} (${nextTry})` };
    case 'start':
      if (failure.attempts >= policy.restart.crashLoopLimit) {
        return { phase: 'failed', reason: `could not start ${failure.attempts} times in a row (${nextTry}): ${failure.reason}` };
      }
      return { phase: 'backoff', reason: `${failure.reason}; retrying in ${inSeconds}` };
    case 'engine':
      return { phase: 'backoff', reason: `${failure.reason}; retrying in ${inSeconds}` };
    case 'name-conflict':
      return { phase: 'pending', reason: `${failure.reason}; checking again in ${inSeconds}` };
  }
}
