/**
 * The ownership label codec: the labels on every container the agent creates, written by
 * `replicaLabels` and read back by the functions below. A container is ours only if it carries
 * MANAGED=true and AGENT_ID equal to this agent's id; anything else is never touched. The keys are
 * a contract with containers already running on hosts: never rename one.
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

type Labelled = { labels: Readonly<Record<string, string>> };

/** The labels that select every container of this agent (a list/events filter). */
export function ownershipFilter(agentId: string): Record<string, string> {
  return { [Labels.MANAGED]: 'true', [Labels.AGENT_ID]: agentId };
}

export interface ReplicaIdentity {
  agentId: string;
  serviceId: string;
  serviceSlug: string;
  replicaIndex: number;
  specHash: string;
  gpuIds: readonly string[];
}

/** Every label of a replica container. */
export function replicaLabels(r: ReplicaIdentity): Record<string, string> {
  return {
    ...ownershipFilter(r.agentId),
    [Labels.SERVICE_ID]: r.serviceId,
    [Labels.SERVICE_SLUG]: r.serviceSlug,
    [Labels.REPLICA]: String(r.replicaIndex),
    [Labels.SPEC_HASH]: r.specHash,
    [Labels.GPUS]: r.gpuIds.join(','),
  };
}

/** The replica index, or -1 when the label is missing or not a non-negative integer. */
export function replicaIndexOf(c: Labelled): number {
  const text = c.labels[Labels.REPLICA]?.trim();
  if (text === undefined || !/^\d+$/.test(text)) return -1;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : -1;
}

export function serviceIdOf(c: Labelled): string | undefined {
  return c.labels[Labels.SERVICE_ID] || undefined;
}

export function serviceSlugOf(c: Labelled): string | undefined {
  return c.labels[Labels.SERVICE_SLUG] || undefined;
}

export function specHashOf(c: Labelled): string | undefined {
  return c.labels[Labels.SPEC_HASH];
}

/** GPU ids from the label, or undefined when the container has no GPUs label at all. */
export function gpuIdsOf(c: Labelled): string[] | undefined {
  const text = c.labels[Labels.GPUS];
  if (text === undefined) return undefined;
  return text.split(',').map((id) => id.trim()).filter((id) => id !== '');
}
