import type { ReplicaLogEntry, ServiceLogQuery } from '../domain/log-entry.js';
import { byTime } from '../domain/log-entry.js';
import { Labels, replicaIndexOf } from '../domain/ownership-labels.js';
import type { ContainerRuntime } from '../runtime/container-runtime.js';

/**
 * The logs of a service's replicas on this host, read from the engine (`cyberun-agent logs`, the
 * gateway's logs API through the tunnel). Without follow: every replica's last `tail` lines, merged
 * oldest first. With follow: each replica's last `tail` lines and then what it writes, interleaved
 * as they arrive, until `signal` aborts (the caller aborts it when its reader leaves).
 * Sources are pulled one entry at a time, so a reader that stops reading pauses every engine stream.
 */
export async function* replicaLogs(
  runtime: ContainerRuntime,
  agentId: string,
  serviceId: string,
  query: ServiceLogQuery,
  signal: AbortSignal,
): AsyncGenerator<ReplicaLogEntry> {
  const containers = (await runtime.listContainers({ [Labels.MANAGED]: 'true', [Labels.AGENT_ID]: agentId, [Labels.SERVICE_ID]: serviceId }))
    .map((c) => ({ id: c.id, index: replicaIndexOf(c) }))
    .filter((c) => c.index >= 0 && (query.replica === undefined || c.index === query.replica))
    .sort((a, b) => a.index - b.index);
  const tagged = (id: string, index: number) =>
    (async function* () {
      for await (const entry of runtime.logStream(id, query, signal)) yield { ...entry, replicaIndex: index };
    })();
  if (query.follow) {
    // Each replica's last `tail` lines, then what it writes, interleaved as they come.
    yield* merge(containers.map((c) => tagged(c.id, c.index)), signal);
    return;
  }
  const backlog: ReplicaLogEntry[] = [];
  for (const c of containers) for await (const entry of tagged(c.id, c.index)) backlog.push(entry);
  yield* backlog.sort(byTime);
}

/** Interleaves async sources as they produce, with one pending pull per source (backpressure). */
async function* merge<T>(sources: AsyncGenerator<T>[], signal: AbortSignal): AsyncGenerator<T> {
  const pending = new Map<number, Promise<{ i: number; r: IteratorResult<T> }>>();
  const pull = (i: number): void => {
    const source = sources[i];
    if (source !== undefined) pending.set(i, source.next().then((r) => ({ i, r })));
  };
  sources.forEach((_, i) => pull(i));
  try {
    while (pending.size > 0 && !signal.aborted) {
      const { i, r } = await Promise.race(pending.values());
      pending.delete(i);
      if (r.done) continue;
      yield r.value;
      pull(i);
    }
  } finally {
    // A source waiting for its next line ends when `signal` aborts its engine stream; not awaited here.
    for (const source of sources) source.return(undefined).catch(() => undefined);
  }
}
