import type Dockerode from 'dockerode';
import type DockerModem from 'docker-modem';
import { AgentError, ErrorCodes } from '../errors.js';
import { translateDockerError, type DockerCall } from './docker-errors.js';
import type { EngineEndpoint } from './engine-connection.js';

/**
 * One dockerode call with a per-call deadline and error translation.
 *
 * The deadline is per call, not per client: dockerode's `timeout` option is a socket idle timeout
 * on every request of the client, which would also cut event streams, long pulls and `stop`. So
 * each call gets an AbortSignal of its own, passed as dockerode's `abortSignal`: `timeoutMs` bounds
 * the call until dockerode resolves (the whole answer; for a stream, its response headers), and
 * `signal` (optional) aborts it at any time. A stream handed out stays governed by `signal` only:
 * its reader destroys it on abort (docker-modem does not attach the signal to a streamed response).
 *
 * Rejects with AgentError only: DOCKER_TIMEOUT when the deadline fired, ABORTED when `signal`
 * aborted (or the signal's own AgentError reason), else the translation of docker-errors.ts.
 */
export async function engineCall<T>(
  engine: EngineEndpoint,
  what: DockerCall,
  timeoutMs: number | undefined,
  call: (abortSignal: AbortSignal) => Promise<T>,
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
  try {
    return await call(controller.signal);
  } catch (err) {
    if (timedOut) throw translateDockerError(err, { ...what, timedOutAfterMs: timeoutMs }, engine);
    if (signal !== undefined && isAborted(signal)) throw abortedError(what, signal, err);
    throw translateDockerError(err, what, engine);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** A function, so the compiler does not keep `aborted` narrowed across the await. */
function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

function abortedError(what: DockerCall, signal: AbortSignal, cause?: unknown): AgentError {
  const reason: unknown = signal.reason;
  if (reason instanceof AgentError) return reason;
  return new AgentError(ErrorCodes.ABORTED, `${what.call} ${what.object} aborted`, { cause: cause ?? reason });
}

/**
 * A raw call through dockerode's modem, for the few calls whose dockerode method does not do what
 * the adapter needs (each caller says why). Resolves with the parsed JSON answer (a Buffer when it
 * is not JSON), or the response for `isStream`; rejects like every dockerode method.
 */
export function modemDial<T = unknown>(docker: Dockerode, options: DockerModem.DialOptions): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    (docker.modem as DockerModem).dial(options, (err, result) => (err ? reject(err) : resolve(result as T)));
  });
}
