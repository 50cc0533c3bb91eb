import type { AgentSession } from './agent-session.js';

/** How a claim of an agent id ended. */
export type ClaimOutcome =
  /** The holder did not answer a ping within the bound, or went away: the claimant takes over. */
  | { kind: 'granted'; holderSilent: boolean }
  /** The holder answered the ping: it is alive and keeps the id. */
  | { kind: 'refused'; why: 'holder-alive' | 'claim-pending' };

interface Claim {
  holder: AgentSession;
  claimant: AgentSession;
  timer: NodeJS.Timeout;
  onPong: () => void;
  done: (outcome: ClaimOutcome) => void;
}

/**
 * A second connection saying hello with an agent id that a connected session holds. It does not
 * evict the holder on its word: the holder is pinged, and
 *
 *   holder answers (any pong) within replaceTimeoutMs ──▶ refused (the claimant is closed, 4005)
 *   no answer within replaceTimeoutMs, or holder gone ──▶ granted (the holder is closed, 4001)
 *
 * so an agent that reconnects after a half-open connection (its old TCP path died unseen) is
 * back within `replaceTimeoutMs`, and a second process using the same id (a copy of a host, an
 * impostor holding a shared key) cannot take over a live agent. One claim per agent id at a time;
 * a further claimant is refused at once.
 */
export class AgentClaims {
  private readonly pending = new Map<string, Claim>();

  constructor(private readonly replaceTimeoutMs: number) {}

  /** Starts a claim; `done` is called exactly once (possibly later, never synchronously twice). */
  start(agentId: string, holder: AgentSession, claimant: AgentSession, done: (outcome: ClaimOutcome) => void): void {
    if (this.pending.has(agentId)) {
      done({ kind: 'refused', why: 'claim-pending' });
      return;
    }
    const finish = (outcome: ClaimOutcome): void => {
      const claim = this.pending.get(agentId);
      if (claim === undefined) return;
      this.pending.delete(agentId);
      clearTimeout(claim.timer);
      claim.holder.ws.off('pong', claim.onPong);
      claim.done(outcome);
    };
    const onPong = (): void => finish({ kind: 'refused', why: 'holder-alive' });
    const timer = setTimeout(() => finish({ kind: 'granted', holderSilent: true }), this.replaceTimeoutMs);
    timer.unref();
    this.pending.set(agentId, { holder, claimant, timer, onPong, done });
    holder.ws.on('pong', onPong);
    try {
      holder.ws.ping();
    } catch {
      // Not open any more: its close event ends the claim (released).
    }
  }

  /**
   * A session closed: a claim it made is dropped (its `done` is not called), a claim against it is
   * granted at once.
   */
  released(session: AgentSession): void {
    for (const [agentId, claim] of [...this.pending]) {
      if (claim.claimant === session) {
        this.pending.delete(agentId);
        clearTimeout(claim.timer);
        claim.holder.ws.off('pong', claim.onPong);
      } else if (claim.holder === session) {
        this.pending.delete(agentId);
        clearTimeout(claim.timer);
        claim.holder.ws.off('pong', claim.onPong);
        claim.done({ kind: 'granted', holderSilent: false });
      }
    }
  }

  /** Drops every claim without deciding it (gateway shutdown). */
  close(): void {
    for (const claim of this.pending.values()) {
      clearTimeout(claim.timer);
      claim.holder.ws.off('pong', claim.onPong);
    }
    this.pending.clear();
  }
}
