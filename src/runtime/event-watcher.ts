import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { AgentError, ErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import type { RuntimeEvent } from './container-runtime.js';
import { engineCall } from './engine-call.js';
import type { EngineEndpoint } from './engine-connection.js';
import { streamLines } from '../util/stream-lines.js';

/**
 * GET /events (dockerode's getEvents) as a never-ending subscription:
 *
 *   connect ──▶ read lines ──▶ stream lost ──▶ onError, wait reconnectDelayMs ──▶ connect (since=…)
 *      ▲                                                                             │
 *      └─────────────────────────────────────────────────────────────────────────────┘
 *   signal aborts (any time) ──▶ stream destroyed, loop ends, no further callbacks
 *
 * Re-subscribing sets `since` to the last event's timeNano + 1 ns, so the engine replays what
 * happened during the gap and nothing is delivered twice. Only connecting is bounded by
 * connectTimeoutMs; an open stream may stay quiet forever.
 */
export interface ContainerEventsOptions {
  docker: Dockerode;
  engine: EngineEndpoint;
  /** Engine filters, e.g. { type: ['container'], label: ['k=v'] }. */
  filters: Record<string, string[]>;
  connectTimeoutMs: number;
  reconnectDelayMs: number;
  logger: Logger;
  onEvent: (e: RuntimeEvent) => void;
  onError?: (err: Error) => void;
  signal: AbortSignal;
}

/** Attributes Docker puts next to labels in an event's Actor.Attributes. */
const EVENT_NON_LABEL_ATTRIBUTES = new Set(['name', 'image', 'exitCode', 'signal', 'execDuration']);

interface EngineEvent {
  Type?: string;
  Action?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
}

export function watchContainerEvents(options: ContainerEventsOptions): void {
  const { docker, engine, filters, signal, logger } = options;
  let sinceNano: bigint | undefined;
  const loop = async (): Promise<void> => {
    while (!signal.aborted) {
      try {
        // `since` as Docker's "<seconds>.<nanoseconds>" text: the typings say number, the engine takes both.
        const since = sinceNano === undefined ? {} : { since: nanoToDockerTimestamp(sinceNano + 1n) as unknown as number };
        const stream = await engineCall(
          engine,
          { call: 'watch events of containers', object: `filtered by ${JSON.stringify(filters)}` },
          options.connectTimeoutMs,
          async (abortSignal) => (await docker.getEvents({ filters, ...since, abortSignal })) as Readable,
          signal,
        );
        // Until an event arrives, a reconnect replays from shortly before this subscription (a
        // duplicate only wakes the reconcile loop early; a gap would delay it to the relist).
        sinceNano ??= BigInt(Date.now() - 1_000) * 1_000_000n;
        const onAbort = (): void => {
          stream.destroy();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        try {
          for await (const line of streamLines(stream)) {
            const parsed = parseEvent(line);
            if (parsed === undefined) continue;
            sinceNano = parsed.nano;
            try {
              options.onEvent(parsed.event);
            } catch (err) {
              logger.error({ err }, 'event handler threw');
            }
          }
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
        if (!signal.aborted) throw new AgentError(ErrorCodes.DOCKER_UNAVAILABLE, 'the Docker Engine closed the event stream', { retryable: true });
      } catch (err) {
        if (signal.aborted) return;
        const error = err instanceof Error ? err : new Error(String(err));
        logger.warn({ err: error }, 'docker event stream lost; reconnecting');
        options.onError?.(error);
      }
      await delay(options.reconnectDelayMs, signal);
    }
  };
  void loop();
}

function nanoToDockerTimestamp(nano: bigint): string {
  const seconds = nano / 1_000_000_000n;
  const rest = (nano % 1_000_000_000n).toString().padStart(9, '0');
  return `${seconds}.${rest}`;
}

export function parseEvent(line: string): { event: RuntimeEvent; nano: bigint } | undefined {
  if (line.trim() === '') return undefined;
  let raw: EngineEvent;
  try {
    raw = JSON.parse(line) as EngineEvent;
  } catch {
    return undefined;
  }
  // timeNano exceeds 2^53: read its digits from the text, not the parsed number.
  const nanoText = /"timeNano":(\d+)/.exec(line)?.[1];
  const nano = nanoText !== undefined ? BigInt(nanoText) : BigInt(raw.time ?? 0) * 1_000_000_000n;
  const attributes = raw.Actor?.Attributes ?? {};
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(attributes)) if (!EVENT_NON_LABEL_ATTRIBUTES.has(key)) labels[key] = value;
  // "exec_start: sh -c …", "health_status: healthy" → the verb before ':'.
  const action = (raw.Action ?? '').split(':')[0]?.trim() ?? '';
  return {
    nano,
    event: { action, containerId: raw.id ?? raw.Actor?.ID ?? '', labels, time: Number(nano / 1_000_000n) },
  };
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
