import { StringDecoder } from 'node:string_decoder';
import { AgentError, ErrorCodes } from '../errors.js';
import { translateDockerError, type DockerCall } from './docker-errors.js';
import { readBody, type EngineClient, type EngineHttpRequest } from './engine-client.js';

/**
 * One Engine API call with a per-call deadline and error translation, over EngineClient.
 *
 * The deadline is per call, not per client: a socket idle timeout shared by every request would
 * also cut event streams, long pulls and `stop`/`wait`. `timeoutMs` bounds the call until the
 * engine's whole answer (for `response: 'stream'`: until the response headers), and `signal`
 * (optional) aborts it at any time, streams included.
 *
 * Rejects with AgentError only: DOCKER_TIMEOUT when the deadline fired, ABORTED when `signal`
 * aborted, else the translation of docker-errors.ts.
 */
export interface EngineRequest extends EngineHttpRequest {
  /**
   * What to resolve with: 'json' (default) the parsed body, undefined when empty; 'buffer' the raw
   * body; 'stream' the response itself, once its headers arrived (the caller must consume it).
   */
  response?: 'json' | 'buffer' | 'stream';
}

export async function engineRequest<T>(
  client: EngineClient,
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
  const kind = request.response ?? 'json';

  let streaming = false;
  try {
    const res = await client.send(request, controller.signal);
    if (kind === 'stream') {
      // The caller's signal keeps governing the stream; drop our listener when it ends.
      streaming = true;
      if (signal !== undefined) res.once('close', () => signal.removeEventListener('abort', onAbort));
      return res as T;
    }
    const body = await readBody(res);
    if (kind === 'buffer') return body as T;
    return parseJson<T>(body, what);
  } catch (err) {
    if (timedOut) throw translateDockerError(err, { ...what, timedOutAfterMs: timeoutMs });
    if (signal !== undefined && isAborted(signal)) throw abortedError(what, signal, err);
    throw translateDockerError(err, what);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    if (!streaming) signal?.removeEventListener('abort', onAbort);
  }
}

function parseJson<T>(body: Buffer, what: DockerCall): T {
  if (body.length === 0) return undefined as T;
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch (err) {
    throw new AgentError(ErrorCodes.DOCKER_API, `${what.call} ${what.object} failed: the Docker Engine's answer is not JSON`, { cause: err });
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
