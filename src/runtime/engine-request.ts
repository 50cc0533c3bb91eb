import type { IncomingMessage } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type DockerModem from 'docker-modem';
import { AgentError, ErrorCodes } from '../errors.js';
import { translateDockerError, type DockerCall } from './docker-errors.js';

/**
 * One Engine API call through docker-modem, with a per-call deadline and error translation.
 *
 * Why not dockerode's `timeout` option: docker-modem applies it as a socket idle timeout to every
 * request of the Docker instance, which would also cut event streams, long pulls and
 * `stop`/`wait`. Why not dockerode's per-method `abortSignal`: several methods drop it
 * (Image/Network `inspect` in dockerode 5.0). So every call goes through `modem.dial` with an
 * AbortSignal of our own: `timeoutMs` bounds the call until the engine's answer (for streams: until
 * the response headers), and `signal` (optional) aborts it at any time, streams included.
 *
 * Rejects with AgentError only: DOCKER_TIMEOUT when the deadline fired, ABORTED when `signal`
 * aborted, else the translation of docker-errors.ts.
 */
export interface EngineRequest {
  method: 'GET' | 'POST' | 'DELETE' | 'PUT';
  /** Path with a trailing '?' when `query`/`body` carry parameters (docker-modem's convention). */
  path: string;
  query?: Record<string, unknown>;
  body?: unknown;
  /** Status codes that count as success (others become errors carrying `statusCode`). */
  ok: number[];
  isStream?: boolean;
  /** X-Registry-Auth payload (docker-modem base64url-encodes it). */
  authconfig?: Record<string, unknown>;
}

export async function engineRequest<T>(
  modem: DockerModem,
  request: EngineRequest,
  what: DockerCall,
  timeoutMs: number | undefined,
  signal?: AbortSignal,
): Promise<T> {
  if (signal !== undefined && isAborted(signal)) throw abortedError(what, signal);
  const controller = new AbortController();
  let timedOut = false;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, timeoutMs);
  const onAbort = (): void => controller.abort();
  signal?.addEventListener('abort', onAbort, { once: true });

  const statusCodes: Record<number, boolean | string> = { 304: 'not modified', 404: 'not found', 409: 'conflict', 500: 'server error' };
  for (const code of request.ok) statusCodes[code] = true;
  // docker-modem sends `_body` (or, without it, the options themselves) as a POST's JSON body, and
  // drops a '{}' body; the query comes from `_query`, or the options themselves.
  const options: Record<string, unknown> =
    request.body === undefined ? { ...(request.query ?? {}) } : { _query: request.query ?? {}, _body: request.body };

  try {
    const result = await new Promise<unknown>((resolve, reject) => {
      modem.dial(
        {
          path: request.path,
          method: request.method,
          options,
          statusCodes,
          isStream: request.isStream === true,
          abortSignal: controller.signal,
          ...(request.authconfig === undefined ? {} : { authconfig: request.authconfig }),
        },
        (err, data) => (err ? reject(err) : resolve(data)),
      );
    });
    if (request.isStream === true && signal !== undefined) {
      // The caller's signal keeps governing the stream; drop our listener when it ends.
      (result as IncomingMessage).once('close', () => signal.removeEventListener('abort', onAbort));
    } else {
      signal?.removeEventListener('abort', onAbort);
    }
    return result as T;
  } catch (err) {
    signal?.removeEventListener('abort', onAbort);
    if (timedOut) throw translateDockerError(err, { ...what, timedOutAfterMs: timeoutMs });
    if (signal !== undefined && isAborted(signal)) throw abortedError(what, signal, err);
    throw translateDockerError(err, what);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function abortedError(what: DockerCall, signal: AbortSignal, cause?: unknown): AgentError {
  const reason: unknown = signal.reason;
  if (reason instanceof AgentError) return reason;
  return new AgentError(ErrorCodes.ABORTED, `${what.call} ${what.object} aborted`, { cause: cause ?? reason });
}

/**
 * Lines of a streamed answer (events, pull progress). Unlike node:readline, it ends or throws
 * when the stream is destroyed (readline waits for an 'end' that a destroyed stream never emits).
 */
export async function* streamLines(stream: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  for await (const chunk of stream) {
    pending += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline).replace(/\r$/, '');
      pending = pending.slice(newline + 1);
      if (line.trim() !== '') yield line;
      newline = pending.indexOf('\n');
    }
  }
  pending += decoder.end();
  if (pending.trim() !== '') yield pending;
}
