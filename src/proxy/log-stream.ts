import { logLine, parseLogQuery } from '../domain/log-entry.js';
import type { AgentCore } from '../agent-core.js';
import type { StreamOpenFrame } from '../tunnel/protocol-stream.js';
import type { TunnelStream } from '../tunnel/tunnel-stream.js';
import { drainedOrClosed } from '../util/drained-or-closed.js';

/**
 * Serves a `stream.open` with `purpose: "logs"`: the path's query is the logs API's (parseLogQuery),
 * the answer `200` with one NDJSON line per entry (`{replica_index, stream, time, line}`), ended
 * when the log is (without follow) or when the gateway resets the stream (follow). Writes wait for
 * the stream's credit, so a reader that stops reading pauses the engine's log streams: the agent
 * holds at most the tunnel's window per stream, never the log.
 */
export async function serveLogs(
  stream: TunnelStream,
  open: StreamOpenFrame,
  core: Pick<AgentCore, 'replicaLogs'>,
  respondError: (stream: TunnelStream, status: number, message: string) => void,
): Promise<void> {
  const parsed = parseLogQuery(new URL(open.path, 'http://agent').searchParams);
  if (!parsed.ok) return respondError(stream, 400, parsed.problems.join('; '));
  const abort = new AbortController();
  const entries = core.replicaLogs(open.service_id, parsed.query, abort.signal);
  if (entries === undefined) return respondError(stream, 404, `service ${open.service_id} is not held by this agent`);
  const stop = (): void => abort.abort();
  stream.once('close', stop);
  stream.once('error', stop);
  // Nothing comes from the gateway on this stream: with has_body: false that half is built ended;
  // without it, its end is read and dropped.
  if (!stream.readableEnded) stream.resume();
  stream.sendResponse(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store' });
  try {
    for await (const entry of entries) {
      if (stream.destroyed) break;
      if (!stream.write(logLine(entry))) await drainedOrClosed(stream);
    }
    if (!stream.destroyed) stream.end();
  } catch (err) {
    if (!stream.destroyed) stream.reset('upstream_failed', err instanceof Error ? err : new Error(String(err)));
  } finally {
    abort.abort();
    stream.off('close', stop);
  }
}
