import { parseLogQuery, logQueryParams, byTime, LOG_TAIL_MAX } from '../domain/log-entry.js';
import type { Logger } from '../log.js';
import type { TunnelStream } from '../tunnel/tunnel-stream.js';
import { streamLines } from '../util/stream-lines.js';
import type { StreamRequest } from './agent-hub.js';
import { STREAMED, fail, ok, type HttpResult } from './http-io.js';
import { responseHead } from './routes-proxy.js';
import type { Route, RouteContext } from './router.js';
import type { ServiceStore } from './service-store.js';
import type { AgentReport } from './service-status.js';
import { drainedOrClosed } from '../util/drained-or-closed.js';

/** What the logs route needs from the agent hub. */
export interface LogsHub {
  reportsFor(serviceId: string): AgentReport[];
  openStream(agentId: string, request: StreamRequest): TunnelStream | undefined;
}

export interface LogsRoutesDeps {
  store: ServiceStore;
  hub: LogsHub;
  logger: Logger;
}

/** One entry of `log_lines` (docs/gateway.md). */
interface LogLineOut {
  replica_index: number;
  agent_id: string;
  stream: 'stdout' | 'stderr';
  time: string;
  line: string;
}

/** The most bytes one agent's answer may carry without follow (tail ≤ 10,000 lines per replica). */
const MAX_AGENT_BYTES = 64 * 1024 * 1024;

/**
 * `GET /api/v1/containers/{serviceId}/logs` (docs/gateway.md): the replica logs of a service, read
 * by every agent that reports replicas of it, through a tunnel stream with `purpose: "logs"` each.
 * Without follow: `{"log_lines": […]}` across all replicas, oldest first. With `follow=true`: an
 * event stream, one `data:` event per line as the agents deliver them, until the client leaves
 * (the agents' streams are reset then). Backpressure: a client that stops reading stops reading
 * the agents' streams, whose credit pauses the agents.
 */
export function logsRoutes(deps: LogsRoutesDeps): Route[] {
  const logs = async (ctx: RouteContext): Promise<HttpResult> => {
    const parsed = parseLogQuery(ctx.url.searchParams);
    if (!parsed.ok) return fail(400, `bad logs parameters: ${parsed.problems.join('; ')}`);
    const service = deps.store.get(ctx.params.id ?? '');
    if (service === undefined) return fail(404, `no container service with id "${ctx.params.id ?? ''}"`);
    const agents = [...new Set(deps.hub.reportsFor(service.id).filter((r) => r.report.replicas.length > 0).map((r) => r.agentId))].sort();
    const request: StreamRequest = { service_id: service.id, method: 'GET', path: `/logs?${logQueryParams(parsed.query)}`, headers: {}, has_body: false, purpose: 'logs' };
    const streams = agents.flatMap((agentId) => {
      const stream = deps.hub.openStream(agentId, request);
      if (stream === undefined) return [];
      stream.on('error', () => undefined);
      return [{ agentId, stream }];
    });
    ctx.res.once('close', () => {
      for (const { stream } of streams) stream.destroy();
    });
    return parsed.query.follow ? follow(ctx, streams) : collect(streams);
  };
  return [{ method: 'GET', pattern: '/api/v1/containers/:id/logs', handler: logs }];
}

type AgentStream = { agentId: string; stream: TunnelStream };

async function* agentLines(agentId: string, stream: TunnelStream, limit: number): AsyncGenerator<LogLineOut> {
  const head = await responseHead(stream);
  if ('error' in head || head.status !== 200) return;
  let bytes = 0;
  for await (const text of streamLines(stream as AsyncIterable<Buffer>)) {
    bytes += text.length;
    if (bytes > limit) {
      stream.destroy();
      return;
    }
    const parsed = parseLine(text);
    if (parsed !== undefined) yield { ...parsed, agent_id: agentId };
  }
}

function parseLine(text: string): Omit<LogLineOut, 'agent_id'> | undefined {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v['replica_index'] !== 'number' || (v['stream'] !== 'stdout' && v['stream'] !== 'stderr') || typeof v['time'] !== 'string' || typeof v['line'] !== 'string') return undefined;
    return { replica_index: v['replica_index'], stream: v['stream'], time: v['time'], line: v['line'] };
  } catch {
    return undefined;
  }
}

async function collect(streams: AgentStream[]): Promise<HttpResult> {
  const perAgent = await Promise.all(
    streams.map(async ({ agentId, stream }) => {
      const out: LogLineOut[] = [];
      try {
        for await (const line of agentLines(agentId, stream, MAX_AGENT_BYTES)) if (out.length < LOG_TAIL_MAX * 64) out.push(line);
      } catch {
        // An agent that went away mid-answer contributes what it sent.
      }
      return out;
    }),
  );
  return ok({ log_lines: perAgent.flat().sort(byTime) });
}

async function follow(ctx: RouteContext, streams: AgentStream[]): Promise<HttpResult> {
  const { res } = ctx;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  await Promise.all(
    streams.map(async ({ agentId, stream }) => {
      try {
        for await (const line of agentLines(agentId, stream, Number.POSITIVE_INFINITY)) {
          if (res.destroyed) break;
          if (!res.write(`data: ${JSON.stringify(line)}\n\n`)) await drainedOrClosed(res);
        }
      } catch {
        // The agent's stream failed; the others go on.
      }
    }),
  );
  if (!res.destroyed) res.end();
  return STREAMED;
}
