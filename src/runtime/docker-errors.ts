import { AgentError, ErrorCodes, type ErrorCode } from '../errors.js';

/**
 * Translation of Engine API failures (engine-client.ts: EngineHttpError, Node socket errors) into
 * AgentError, at the adapter edge.
 *
 * | what the call gave                                | code               | retryable |
 * |---------------------------------------------------|--------------------|-----------|
 * | our call's timeout signal fired / ETIMEDOUT       | DOCKER_TIMEOUT     | yes       |
 * | ECONNREFUSED, ENOENT, EACCES, ECONNRESET, EPIPE   | DOCKER_UNAVAILABLE | yes       |
 * | HTTP 404                                          | DOCKER_NOT_FOUND   | no        |
 * | HTTP 409                                          | DOCKER_CONFLICT    | no        |
 * | anything else                                     | DOCKER_API         | no        |
 *
 * The message names the call and the object ("start container abc123 failed: …") followed by the
 * engine's own message; the original error is kept as `cause`.
 */

/** What was being done, for messages: `call` is a verb phrase, `object` names the target. */
export interface DockerCall {
  call: string;
  object: string;
  /** Set when the call's own timeout fired; the error is then DOCKER_TIMEOUT whatever it says. */
  timedOutAfterMs?: number;
}

const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);

interface EngineErrorShape {
  statusCode?: unknown;
  code?: unknown;
  name?: unknown;
  message?: unknown;
  json?: unknown;
}

/** The HTTP status the engine answered with, when the error came from an engine response. */
export function dockerStatusCode(err: unknown): number | undefined {
  const status = (err as EngineErrorShape | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** The engine's own message (`{"message": …}` body), else the error's message, trimmed. */
export function engineMessage(err: unknown): string {
  const shape = err as EngineErrorShape | null;
  const json = shape?.json;
  if (json !== null && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string') {
    return (json as { message: string }).message.trim();
  }
  if (typeof json === 'string' && json.trim() !== '') return json.trim();
  if (err instanceof Error) return err.message.trim();
  return String(err);
}

function errnoCode(err: unknown): string | undefined {
  let current: unknown = err;
  // Node wraps socket errors once in a while (AggregateError from happy-eyeballs, cause chains).
  for (let depth = 0; depth < 3 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as EngineErrorShape).code;
    if (typeof code === 'string') return code;
    const errors = (current as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.length > 0) {
      current = errors[0];
      continue;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

export function classifyDockerError(err: unknown, timedOut: boolean): { code: ErrorCode; retryable: boolean } {
  if (err instanceof AgentError) return { code: err.code, retryable: err.retryable };
  const status = dockerStatusCode(err);
  if (status === 404) return { code: ErrorCodes.DOCKER_NOT_FOUND, retryable: false };
  if (status === 409) return { code: ErrorCodes.DOCKER_CONFLICT, retryable: false };
  if (status !== undefined) return { code: ErrorCodes.DOCKER_API, retryable: false };
  const code = errnoCode(err);
  if (timedOut || (code !== undefined && TIMEOUT_CODES.has(code)) || (err as EngineErrorShape | null)?.name === 'TimeoutError') {
    return { code: ErrorCodes.DOCKER_TIMEOUT, retryable: true };
  }
  if (code !== undefined && UNAVAILABLE_CODES.has(code)) return { code: ErrorCodes.DOCKER_UNAVAILABLE, retryable: true };
  return { code: ErrorCodes.DOCKER_API, retryable: false };
}

/** Translates any error of an Engine API call. An AgentError passes through unchanged. */
export function translateDockerError(err: unknown, what: DockerCall): AgentError {
  if (err instanceof AgentError) return err;
  const timedOut = what.timedOutAfterMs !== undefined;
  const { code, retryable } = classifyDockerError(err, timedOut);
  const status = dockerStatusCode(err);
  let detail: string;
  if (code === ErrorCodes.DOCKER_TIMEOUT) {
    detail = timedOut ? `no answer from the Docker Engine within ${what.timedOutAfterMs} ms` : `timed out: ${engineMessage(err)}`;
  } else if (code === ErrorCodes.DOCKER_UNAVAILABLE) {
    detail = `the Docker Engine is not reachable (${errnoCode(err) ?? 'connection failed'}): ${engineMessage(err)}; check that dockerd runs and the agent may use its socket`;
  } else {
    detail = engineMessage(err);
  }
  return new AgentError(code, `${what.call} ${what.object} failed: ${detail}`, {
    cause: err,
    retryable,
    details: { call: what.call, object: what.object, ...(status === undefined ? {} : { statusCode: status }) },
  });
}
