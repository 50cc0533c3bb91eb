import type { SetupFailureKind } from '../domain/setup-failure.js';
import { ErrorCodes, isAgentError } from '../errors.js';

/** The failure class of an error met at `stage` (setup-failure.ts); branches on our codes only. */
export function setupFailureKind(err: unknown, stage: 'pull' | 'create' | 'start'): SetupFailureKind {
  if (!isAgentError(err)) return 'start';
  switch (err.code) {
    case ErrorCodes.DOCKER_UNAVAILABLE:
    case ErrorCodes.DOCKER_TIMEOUT:
    case ErrorCodes.DOCKER_TLS:
      return 'engine';
    case ErrorCodes.IMAGE_PULL_FAILED:
    case ErrorCodes.IMAGE_PULL_STALLED:
    case ErrorCodes.IMAGE_PULL_TIMEOUT:
    case ErrorCodes.IMAGE_PULL_NO_SPACE:
      return err.retryable ? 'pull-transient' : 'pull-definitive';
    case ErrorCodes.IMAGE_NOT_PRESENT:
      return 'pull-definitive';
    case ErrorCodes.DOCKER_CONFLICT:
      return stage === 'create' ? 'name-conflict' : 'start';
    default:
      return 'start';
  }
}
