import type { IncomingMessage } from 'node:http';
import type Dockerode from 'dockerode';
import { AgentError, ErrorCodes, isAgentError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PullOptions, PullProgress } from './container-runtime.js';
import { dockerStatusCode, engineMessage } from './docker-errors.js';
import { engineCall, modemDial } from './engine-call.js';
import type { EngineEndpoint } from './engine-connection.js';
import type { RegistryAuth } from './registry-auth.js';
import { streamLines } from '../util/stream-lines.js';
import { isNoSpacePullFailure, isTransientPullFailure } from './pull-failure.js';
import { PullProgressTracker, splitReference, type PullMessage } from './pull-progress.js';

/**
 * Image presence and pulls.
 *
 * A pull is one dockerode `createImage` (POST /images/create, registry credentials from
 * RegistryAuth as its `authconfig`) whose JSON-lines answer is folded into PullProgress per layer
 * id. Two timers guard it: the stall timer (restarted whenever the aggregate changes) and the
 * total timer; either aborts the HTTP stream, which makes the engine cancel the pull, and rejects
 * with IMAGE_PULL_STALLED / IMAGE_PULL_TIMEOUT (retryable). An `{"error": …}` line, or an error
 * answer before the stream, rejects with IMAGE_PULL_FAILED naming the image and the registry's
 * message.
 *
 * Concurrent pulls of one ref share one in-flight pull (its timeouts are the first caller's); each
 * caller gets every progress event. A caller's own signal detaches only that caller (ABORTED); the
 * shared pull is aborted when no caller is left.
 */

export interface ImagePullerOptions {
  docker: Dockerode;
  engine: EngineEndpoint;
  auth: RegistryAuth;
  logger: Logger;
  apiTimeoutMs: number;
}

interface Caller {
  onProgress: ((p: PullProgress) => void) | undefined;
}

interface InFlight {
  promise: Promise<void>;
  callers: Set<Caller>;
  controller: AbortController;
}


export class ImagePuller {
  private readonly inFlight = new Map<string, InFlight>();

  constructor(private readonly options: ImagePullerOptions) {}

  /**
   * One GET /images/{ref}/json: true when the engine has the image. Through the modem because
   * dockerode 5's Image.inspect drops its `abortSignal`, and this call must keep its deadline.
   */
  async hasImage(ref: string): Promise<boolean> {
    const { docker, engine, apiTimeoutMs } = this.options;
    try {
      await engineCall(engine, { call: 'inspect image', object: ref }, apiTimeoutMs, (abortSignal) =>
        modemDial(docker, { path: `/images/${ref}/json`, method: 'GET', statusCodes: { 200: true, 404: 'no such image', 500: 'server error' }, abortSignal }),
      );
      return true;
    } catch (err) {
      if (isAgentError(err, ErrorCodes.DOCKER_NOT_FOUND)) return false;
      throw err;
    }
  }

  async pull(ref: string, options: PullOptions): Promise<void> {
    const caller: Caller = { onProgress: options.onProgress };
    let flight = this.inFlight.get(ref);
    if (flight === undefined) {
      const controller = new AbortController();
      const created: InFlight = { callers: new Set([caller]), controller, promise: Promise.resolve() };
      created.promise = this.run(ref, options, created).finally(() => this.inFlight.delete(ref));
      flight = created;
      this.inFlight.set(ref, flight);
    } else {
      flight.callers.add(caller);
      this.options.logger.debug({ image: ref }, 'joining in-flight pull');
    }
    return this.follow(ref, flight, caller, options.signal);
  }

  private follow(ref: string, flight: InFlight, caller: Caller, signal: AbortSignal | undefined): Promise<void> {
    if (signal === undefined) return flight.promise;
    return new Promise<void>((resolve, reject) => {
      const leave = (): void => {
        flight.callers.delete(caller);
        if (flight.callers.size === 0) {
          flight.controller.abort(new AgentError(ErrorCodes.ABORTED, `pull of image "${ref}" aborted: no caller is waiting for it`));
        }
        reject(new AgentError(ErrorCodes.ABORTED, `pull of image "${ref}" aborted`, { cause: signal.reason }));
      };
      if (signal.aborted) return leave();
      signal.addEventListener('abort', leave, { once: true });
      flight.promise.then(
        () => {
          signal.removeEventListener('abort', leave);
          resolve();
        },
        (err: unknown) => {
          signal.removeEventListener('abort', leave);
          reject(err);
        },
      );
    });
  }

  private async run(ref: string, options: PullOptions, flight: InFlight): Promise<void> {
    const { docker, engine, logger, auth } = this.options;
    const started = Date.now();
    const tracker = new PullProgressTracker();
    const abortWith = (error: AgentError): void => flight.controller.abort(error);
    let stallTimer: NodeJS.Timeout | undefined;
    const armStall = (): void => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(
        () =>
          abortWith(
            new AgentError(ErrorCodes.IMAGE_PULL_STALLED, `pull of image "${ref}" stalled: no progress for ${options.stallTimeoutMs} ms`, {
              retryable: true,
              details: { image: ref, progress: tracker.snapshot() },
            }),
          ),
        options.stallTimeoutMs,
      );
    };
    const totalTimer = setTimeout(
      () =>
        abortWith(
          new AgentError(ErrorCodes.IMAGE_PULL_TIMEOUT, `pull of image "${ref}" did not finish within ${options.totalTimeoutMs} ms`, {
            retryable: true,
            details: { image: ref, progress: tracker.snapshot() },
          }),
        ),
      options.totalTimeoutMs,
    );
    armStall();

    try {
      const credentials = await auth.forImage(ref);
      logger.info({ image: ref, authenticated: credentials !== undefined }, 'pulling image');
      let stream: IncomingMessage;
      try {
        // No deadline of its own: the stall and total timers abort it through the flight's signal.
        stream = await engineCall(
          engine,
          { call: 'pull image', object: `"${ref}"` },
          undefined,
          async (abortSignal) => (await docker.createImage(credentials === undefined ? undefined : { ...credentials }, { ...splitReference(ref), abortSignal })) as IncomingMessage,
          flight.controller.signal,
        );
      } catch (err) {
        throw this.translateStartError(ref, err, flight.controller.signal);
      }
      await this.consume(ref, stream, tracker, flight, armStall);
      logger.info({ image: ref, ms: Date.now() - started, progress: tracker.snapshot() }, 'image pulled');
    } catch (err) {
      const reason: unknown = flight.controller.signal.reason;
      const error = flight.controller.signal.aborted && reason instanceof AgentError ? reason : err;
      logger.warn({ image: ref, err: error, ms: Date.now() - started }, 'image pull failed');
      throw error;
    } finally {
      clearTimeout(stallTimer);
      clearTimeout(totalTimer);
    }
  }

  private translateStartError(ref: string, err: unknown, signal: AbortSignal): unknown {
    if (signal.aborted && signal.reason instanceof AgentError) return signal.reason;
    if (isAgentError(err) && (err.code === ErrorCodes.DOCKER_UNAVAILABLE || err.code === ErrorCodes.DOCKER_TIMEOUT || err.code === ErrorCodes.ABORTED)) {
      return err;
    }
    const cause = isAgentError(err) && err.cause !== undefined ? err.cause : err;
    return pullFailure(ref, engineMessage(cause), err, dockerStatusCode(cause));
  }

  private async consume(ref: string, stream: IncomingMessage, tracker: PullProgressTracker, flight: InFlight, onProgress: () => void): Promise<void> {
    const signal = flight.controller.signal;
    const onAbort = (): void => {
      stream.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const line of streamLines(stream)) {
        let message: PullMessage;
        try {
          message = JSON.parse(line) as PullMessage;
        } catch {
          continue;
        }
        if (message.error !== undefined || message.errorDetail !== undefined) {
          const text = typeof message.error === 'string' ? message.error : String(message.errorDetail?.message ?? 'unknown error');
          throw pullFailure(ref, text);
        }
        if (tracker.apply(message)) {
          onProgress();
          const snapshot = tracker.snapshot();
          for (const caller of flight.callers) caller.onProgress?.({ ...snapshot });
        }
      }
      if (signal.aborted) throw signal.reason;
      if (!stream.complete) {
        throw new AgentError(ErrorCodes.IMAGE_PULL_FAILED, `pull of image "${ref}" failed: the engine closed the progress stream early`, {
          retryable: true,
          details: { image: ref },
        });
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (isAgentError(err)) throw err;
      throw new AgentError(ErrorCodes.IMAGE_PULL_FAILED, `pull of image "${ref}" failed: reading the engine's progress stream: ${engineMessage(err)}`, {
        cause: err,
        retryable: true,
        details: { image: ref },
      });
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * The error of a pull the engine reported failed with `text` (and `statusCode`, when it answered
 * POST /images/create with an error): IMAGE_PULL_NO_SPACE (retryable, and saying so) when its disk
 * is full, else IMAGE_PULL_FAILED, retryable when the failure is transient (pull-failure.ts: a
 * registry or network blip) and not when definitive (no such image, access denied).
 */
function pullFailure(ref: string, text: string, cause?: unknown, statusCode?: number): AgentError {
  if (isNoSpacePullFailure(text)) {
    return new AgentError(
      ErrorCodes.IMAGE_PULL_NO_SPACE,
      `pull of image "${ref}" failed: the Docker Engine's disk is full (${text}); the agent removes unused images it pulled (image_gc) and tries again`,
      { retryable: true, details: { image: ref }, ...(cause === undefined ? {} : { cause }) },
    );
  }
  return new AgentError(ErrorCodes.IMAGE_PULL_FAILED, `pull of image "${ref}" failed: ${text}`, {
    retryable: isTransientPullFailure(text, statusCode),
    details: { image: ref, ...(statusCode === undefined ? {} : { statusCode }) },
    ...(cause === undefined ? {} : { cause }),
  });
}
