/**
 * Ownership labels on every container the agent creates. A container is ours only if it carries
 * MANAGED=true and AGENT_ID equal to this agent's id; anything else is never touched.
 */
export const Labels = {
  MANAGED: 'cloud.cyberun.managed',
  AGENT_ID: 'cloud.cyberun.agent-id',
  SERVICE_ID: 'cloud.cyberun.service-id',
  SERVICE_SLUG: 'cloud.cyberun.service-slug',
  REPLICA: 'cloud.cyberun.replica',
  /** containerSpecHash of the definition the container was created from. */
  SPEC_HASH: 'cloud.cyberun.spec-hash',
  /** Comma-separated GPU device ids held by the container ('' for none). */
  GPUS: 'cloud.cyberun.gpus',
} as const;

export function ownershipFilter(agentId: string): Record<string, string> {
  return { [Labels.MANAGED]: 'true', [Labels.AGENT_ID]: agentId };
}
