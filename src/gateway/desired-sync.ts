import type { Logger } from '../log.js';
import type { HelloFrame } from '../tunnel/protocol.js';
import type { AgentSession } from './agent-session.js';
import { computeDesiredSets } from './desired-sets.js';
import type { ServicePlacement } from './placement.js';
import type { DepartedAgent } from './service-status.js';
import type { ServiceStore } from './service-store.js';

export interface DesiredSyncOptions {
  store: ServiceStore;
  logger: Logger;
  /** How long a disconnected agent keeps its placements; 0: they move at once. */
  disconnectGraceMs: number;
  now: () => number;
  /** A departed agent's grace ran out: placement must be computed again. */
  onGraceExpired: () => void;
}

/**
 * Placement and each agent's `services.sync`: whenever the store, the set of agents or an agent's
 * hello changes, `reschedule` places every deployed service again and sends a new full sync to
 * every agent whose set changed. Revisions increase strictly; they start at the gateway's start
 * time in ms so they also grow across gateway restarts.
 *
 * Agents whose tunnel dropped are held for `disconnectGraceMs`: still placement candidates that
 * keep their services and get no new ones, so a tunnel blip moves nothing.
 */
export class DesiredSync {
  private placements = new Map<string, ServicePlacement>();
  private readonly departed = new Map<string, DepartedAgent & { hello: HelloFrame; timer: NodeJS.Timeout }>();
  private revision: number;

  constructor(private readonly options: DesiredSyncOptions) {
    this.revision = options.now();
  }

  placementOf(serviceId: string): ServicePlacement | undefined {
    return this.placements.get(serviceId);
  }

  departedAgents(): ReadonlyMap<string, DepartedAgent> {
    return this.departed;
  }

  /** An agent disconnected: keep its placements for the grace period. */
  hold(hello: HelloFrame): void {
    const graceMs = this.options.disconnectGraceMs;
    if (graceMs <= 0) return;
    const since = this.options.now();
    const timer = setTimeout(() => {
      this.departed.delete(hello.agent_id);
      this.options.logger.warn({ agentId: hello.agent_id, graceMs }, 'agent did not come back within the disconnect grace; placing its services elsewhere');
      this.options.onGraceExpired();
    }, graceMs);
    timer.unref();
    this.departed.set(hello.agent_id, { hello, since, until: since + graceMs, timer });
  }

  /** An agent said hello: it is no longer departed. Returns how long it was away, if it was. */
  returned(agentId: string): number | undefined {
    const away = this.departed.get(agentId);
    if (away === undefined) return undefined;
    clearTimeout(away.timer);
    this.departed.delete(agentId);
    return this.options.now() - away.since;
  }

  /** Places every deployed service on `sessions` (plus departed agents) and sends what changed. */
  reschedule(sessions: ReadonlyMap<string, AgentSession>): void {
    const connected = [...sessions.values()].flatMap((s) => (s.hello === undefined ? [] : [s.hello]));
    const agents = [...connected, ...[...this.departed.values()].map((d) => d.hello)];
    const { placements, perAgent } = computeDesiredSets(this.options.store.list(), agents, this.placements, new Set(this.departed.keys()));
    this.placements = placements;
    for (const [agentId, services] of perAgent) {
      const session = sessions.get(agentId);
      if (session === undefined) continue;
      const key = JSON.stringify(services);
      if (key === session.lastSyncKey) continue;
      session.lastSyncKey = key;
      session.noteSynced(services.map((s) => s.id));
      this.revision += 1;
      session.send({ type: 'services.sync', revision: this.revision, services: services.map((s) => ({ id: s.id, definition: { ...s.definition }, ...(s.deployedAt === undefined ? {} : { deployed_at: s.deployedAt }) })) });
      this.options.logger.info({ agentId, revision: this.revision, services: services.length }, 'services.sync sent');
    }
  }

  close(): void {
    for (const d of this.departed.values()) clearTimeout(d.timer);
    this.departed.clear();
  }
}
