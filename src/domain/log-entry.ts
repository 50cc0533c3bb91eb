/** One line a container wrote, as the engine reports it. */
export interface LogEntry {
  stream: 'stdout' | 'stderr';
  /** RFC 3339 with nanoseconds, as Docker stamps it ('' when the engine gave none). */
  time: string;
  line: string;
}

/** What a reader asks of a container's log. */
export interface LogQuery {
  /** The last this many lines (per container), then (with follow) what is written next. */
  tail: number;
  /** Only lines written at or after this time (unix seconds). */
  sinceSeconds: number | undefined;
  follow: boolean;
}

/** A log entry of one replica of a service. */
export interface ReplicaLogEntry extends LogEntry {
  replicaIndex: number;
}

/** What a reader asks of a service's logs on one host: a LogQuery, for one replica or all. */
export interface ServiceLogQuery extends LogQuery {
  /** Only this replica index; undefined = every replica. */
  replica: number | undefined;
}

/** Orders entries by time; entries without one keep their place at the front. Stable. */
export function byTime(a: LogEntry, b: LogEntry): number {
  return a.time < b.time ? -1 : a.time > b.time ? 1 : 0;
}

export const LOG_TAIL_DEFAULT = 100;
export const LOG_TAIL_MAX = 10_000;

/**
 * The logs API's parameters (`tail`, `since`, `replica`, `follow`) → a ServiceLogQuery, or every
 * problem, each naming the parameter and what it accepts. Shared by the gateway, the admin endpoint
 * and the agent's tunnel handler, so all three read a query alike. Unknown parameters are problems.
 */
export function parseLogQuery(params: URLSearchParams): { ok: true; query: ServiceLogQuery } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  for (const name of new Set(params.keys())) {
    if (!['tail', 'since', 'replica', 'follow'].includes(name)) problems.push(`unknown parameter "${name}" (use tail, since, replica, follow)`);
    else if (params.getAll(name).length > 1) problems.push(`${name} is given more than once`);
  }
  const tailText = params.get('tail');
  let tail = LOG_TAIL_DEFAULT;
  if (tailText !== null) {
    tail = /^\d{1,6}$/.test(tailText) ? Number(tailText) : Number.NaN;
    if (!(tail >= 0 && tail <= LOG_TAIL_MAX)) problems.push(`tail "${tailText}" is not a whole number from 0 to ${LOG_TAIL_MAX}`);
  }
  const sinceText = params.get('since');
  let sinceSeconds: number | undefined;
  if (sinceText !== null) {
    const t = /^\d{1,12}(\.\d+)?$/.test(sinceText) ? Number(sinceText) : /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/i.test(sinceText) ? Date.parse(sinceText) / 1000 : Number.NaN;
    if (Number.isFinite(t)) sinceSeconds = Math.floor(t);
    else problems.push(`since "${sinceText}" is not a time; write RFC 3339 (2026-12-02T10:00:00Z) or unix seconds`);
  }
  const replicaText = params.get('replica');
  let replica: number | undefined;
  if (replicaText !== null) {
    replica = /^\d{1,4}$/.test(replicaText) ? Number(replicaText) : undefined;
    if (replica === undefined) problems.push(`replica "${replicaText}" is not a replica index (0, 1, …)`);
  }
  const followText = params.get('follow');
  let follow = false;
  if (followText !== null) {
    if (followText === 'true' || followText === '1') follow = true;
    else if (followText !== 'false' && followText !== '0') problems.push(`follow "${followText}" is not true or false`);
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, query: { tail, sinceSeconds, replica, follow } };
}

/** The query as URL parameters (what parseLogQuery reads back). */
export function logQueryParams(query: ServiceLogQuery): string {
  const params = new URLSearchParams({ tail: String(query.tail) });
  if (query.sinceSeconds !== undefined) params.set('since', String(query.sinceSeconds));
  if (query.replica !== undefined) params.set('replica', String(query.replica));
  if (query.follow) params.set('follow', 'true');
  return params.toString();
}

/** One NDJSON line of a logs answer (tunnel stream, admin endpoint): `{replica_index, stream, time, line}`. */
export function logLine(entry: ReplicaLogEntry): string {
  return `${JSON.stringify({ replica_index: entry.replicaIndex, stream: entry.stream, time: entry.time, line: entry.line })}\n`;
}
