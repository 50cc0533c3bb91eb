import { ProtocolErrorCodes } from '../errors.js';
import {
  CLOSE_AGENT_ID_IN_USE,
  CLOSE_AGENT_ID_REFUSED,
  CLOSE_REPLACED,
  CLOSE_UNSUPPORTED_VERSION,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  type HelloFrame,
} from '../tunnel/protocol.js';
import { AgentClaims, type ClaimOutcome } from './agent-claims.js';
import type { AgentSession } from './agent-session.js';
import type { DesiredSync } from './desired-sync.js';

export interface AgentRosterOptions {
  sync: DesiredSync;
  heartbeatIntervalMs: number;
  /** How long a holder has to answer a ping before a newer connection with its id replaces it. */
  replaceTimeoutMs: number;
  /** The set of identified agents changed: placement must be computed again. */
  reschedule: () => void;
}

/**
 * Who holds each agent id: at most one identified session per id, decided on hello.
 *
 * - The agent id must be the one the connection's key is issued for (a shared key: any id); a
 *   hello claiming another is refused (`agent_id_refused`, closed 4004) and touches nothing else.
 * - An agent id cannot change on an open connection (4004 as well).
 * - A hello for an id that a connected session holds is a claim (agent-claims.ts): the holder is
 *   replaced only if it does not answer a ping within `replaceTimeoutMs`, else the newcomer is
 *   refused (`agent_id_in_use`, 4005).
 * - A repeated hello on an identified connection refreshes labels and GPUs.
 */
export class AgentRoster {
  readonly byAgent = new Map<string, AgentSession>();
  private readonly claims: AgentClaims;

  constructor(private readonly options: AgentRosterOptions) {
    this.claims = new AgentClaims(options.replaceTimeoutMs);
  }

  /** A valid hello on `session`. */
  onHello(session: AgentSession, hello: HelloFrame): void {
    if (hello.protocol_version < MIN_PROTOCOL_VERSION || hello.protocol_version > PROTOCOL_VERSION) {
      session.sendError(
        ProtocolErrorCodes.UNSUPPORTED_VERSION,
        `protocol_version ${hello.protocol_version} is not supported; this gateway speaks ${MIN_PROTOCOL_VERSION} to ${PROTOCOL_VERSION}`,
        'hello',
      );
      session.end(CLOSE_UNSUPPORTED_VERSION, 'unsupported protocol version');
      return;
    }
    const id = hello.agent_id;
    if (session.boundAgentId !== undefined && id !== session.boundAgentId) {
      session.log.warn({ claimed: id.slice(0, 64), boundTo: session.boundAgentId }, 'hello refused: the agent key is issued for another agent_id');
      this.refuseHello(session, ProtocolErrorCodes.AGENT_ID_REFUSED, `this connection's agent key is issued for agent_id "${session.boundAgentId}", not "${id.slice(0, 64)}": use the key issued for this agent, or fix its agent_id`, CLOSE_AGENT_ID_REFUSED, 'agent key not issued for this agent_id');
      return;
    }
    if (session.agentId !== undefined || session.claiming) {
      const current = session.agentId ?? session.pendingHello?.agent_id;
      if (current !== id) {
        this.refuseHello(session, ProtocolErrorCodes.AGENT_ID_REFUSED, `agent_id cannot change on an open connection (was "${current ?? ''}"): reconnect`, CLOSE_AGENT_ID_REFUSED, 'agent_id changed on an open connection');
        return;
      }
      if (session.claiming) session.pendingHello = hello;
      else this.admit(session, hello);
      return;
    }
    clearTimeout(session.helloTimer);
    const holder = this.byAgent.get(id);
    if (holder === undefined) {
      this.admit(session, hello);
      return;
    }
    session.claiming = true;
    session.pendingHello = hello;
    session.log.info({ agentId: id, holder: holder.id }, 'agent id held by a connected session: pinging it before replacing it');
    this.claims.start(id, holder, session, (outcome) => this.onClaimDecided(session, holder, outcome));
  }

  private onClaimDecided(session: AgentSession, holder: AgentSession, outcome: ClaimOutcome): void {
    session.claiming = false;
    const hello = session.pendingHello;
    session.pendingHello = undefined;
    if (hello === undefined || session.ending) return;
    if (outcome.kind === 'refused') {
      session.log.warn({ agentId: hello.agent_id, holder: holder.id, holderRemote: holder.remote, why: outcome.why }, 'hello refused: the agent id is held by a live connection');
      const message = outcome.why === 'holder-alive'
        ? `agent_id "${hello.agent_id}" is held by a live connection (it answered the gateway's ping): two agents cannot share an agent_id; stop the other one or give this one its own id`
        : `agent_id "${hello.agent_id}" is being claimed by another connection: retry later`;
      this.refuseHello(session, ProtocolErrorCodes.AGENT_ID_IN_USE, message, CLOSE_AGENT_ID_IN_USE, 'agent_id in use by a live connection');
      return;
    }
    if (outcome.holderSilent && this.byAgent.get(hello.agent_id) === holder) {
      holder.log.warn({ replaceTimeoutMs: this.options.replaceTimeoutMs, by: session.id }, 'agent connection did not answer a ping: replaced by its newer connection');
      this.byAgent.delete(hello.agent_id);
      holder.end(CLOSE_REPLACED, 'replaced by a newer connection of this agent_id');
    }
    this.admit(session, hello);
  }

  private admit(session: AgentSession, hello: HelloFrame): void {
    const first = session.hello === undefined;
    session.identify(hello);
    this.byAgent.set(hello.agent_id, session);
    const awayMs = this.options.sync.returned(hello.agent_id);
    if (awayMs !== undefined) session.log.info({ awayMs }, 'agent back within the disconnect grace; its placements kept');
    session.log.info({ labels: hello.labels.length, gpus: hello.gpu_devices.length, first }, 'agent hello');
    // The welcome names the version this connection speaks: the agent's (every one in range is served).
    session.send({ type: 'welcome', protocol_version: hello.protocol_version, heartbeat_interval_ms: this.options.heartbeatIntervalMs });
    this.options.reschedule();
  }

  private refuseHello(session: AgentSession, code: string, message: string, closeCode: number, reason: string): void {
    session.sendError(code, message, 'hello');
    session.end(closeCode, reason);
  }

  /**
   * A session closed. Returns whether it held its agent id; then its placements are held for the
   * disconnect grace (unless the gateway is closing) and a claim waiting on it is granted.
   */
  onClose(session: AgentSession, gatewayClosing: boolean): boolean {
    const agentId = session.agentId;
    const held = agentId !== undefined && this.byAgent.get(agentId) === session;
    if (held) {
      this.byAgent.delete(agentId);
      if (session.hello !== undefined && !gatewayClosing) this.options.sync.hold(session.hello);
    }
    // A claim this session made is dropped; a claim against it is granted now (after the hold,
    // so the claimant's admission ends it at once).
    this.claims.released(session);
    return held;
  }

  close(): void {
    this.claims.close();
  }
}
