/**
 * The project's one error type. Every foreign error (Docker Engine API, undici, ws, zod, fs) is translated
 * into an AgentError at the adapter that met it, with the original kept as `cause`.
 *
 * Callers branch on `code`, never on `message`. Messages are for people: they name the field or
 * object, what is wrong with it, and the fix. They never contain secrets.
 */
export const ErrorCodes = {
  /** A service definition broke the contract (see src/spec). */
  SPEC_INVALID: 'AGENT_ERR_SPEC_INVALID',
  /** cyberun-agent.yaml, CYBERUN_* env or flags are invalid. */
  CONFIG_INVALID: 'AGENT_ERR_CONFIG_INVALID',
  /** A file the agent must read is missing or unreadable. */
  FILE_UNREADABLE: 'AGENT_ERR_FILE_UNREADABLE',
  /** A volume mount is refused by the security policy. */
  VOLUME_REFUSED: 'AGENT_ERR_VOLUME_REFUSED',
  /** The Docker Engine could not be reached at all. */
  DOCKER_UNAVAILABLE: 'AGENT_ERR_DOCKER_UNAVAILABLE',
  /** The Docker Engine answered with an error. */
  DOCKER_API: 'AGENT_ERR_DOCKER_API',
  /** A Docker object was not found (404). */
  DOCKER_NOT_FOUND: 'AGENT_ERR_DOCKER_NOT_FOUND',
  /** A Docker name is taken (409). */
  DOCKER_CONFLICT: 'AGENT_ERR_DOCKER_CONFLICT',
  /** A Docker call ran past its timeout. */
  DOCKER_TIMEOUT: 'AGENT_ERR_DOCKER_TIMEOUT',
  /** TLS with the Docker Engine failed: its certificate does not verify, it refused ours, or it does not speak TLS. */
  DOCKER_TLS: 'AGENT_ERR_DOCKER_TLS',
  /** Image pull failed (not found, auth, network). */
  IMAGE_PULL_FAILED: 'AGENT_ERR_IMAGE_PULL_FAILED',
  /** Image pull made no progress for the stall timeout. */
  IMAGE_PULL_STALLED: 'AGENT_ERR_IMAGE_PULL_STALLED',
  /** Image pull ran past its total timeout. */
  IMAGE_PULL_TIMEOUT: 'AGENT_ERR_IMAGE_PULL_TIMEOUT',
  /** The container could not be started (e.g. no GPU driver). */
  CONTAINER_START_FAILED: 'AGENT_ERR_CONTAINER_START_FAILED',
  /** A service can never be placed on this host. */
  PLACEMENT_REJECTED: 'AGENT_ERR_PLACEMENT_REJECTED',
  /** Host inventory could not be read. */
  INVENTORY_FAILED: 'AGENT_ERR_INVENTORY_FAILED',
  /** The operation was aborted (shutdown, superseded). */
  ABORTED: 'AGENT_ERR_ABORTED',
  /** A state file could not be written or read back. */
  STATE_IO: 'AGENT_ERR_STATE_IO',
  /** A tunnel frame broke the protocol. */
  PROTOCOL: 'AGENT_ERR_PROTOCOL',
  /** The tunnel could not connect or was closed. */
  TUNNEL: 'AGENT_ERR_TUNNEL',
  /** An upstream (replica or external URL) failed. */
  UPSTREAM: 'AGENT_ERR_UPSTREAM',
  /** An HTTP request to the agent or gateway was invalid. */
  BAD_REQUEST: 'AGENT_ERR_BAD_REQUEST',
  /** The local admin endpoint could not listen (address taken, another agent on the same state dir). */
  ADMIN_LISTEN: 'AGENT_ERR_ADMIN_LISTEN',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface AgentErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  /** Structured details safe to log and report (never secrets). */
  details?: Record<string, unknown>;
}

export class AgentError extends Error {
  override readonly name = 'AgentError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: AgentErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }
}

export function isAgentError(err: unknown, code?: ErrorCode): err is AgentError {
  return err instanceof AgentError && (code === undefined || err.code === code);
}

/** A message for any thrown value, without stack or cause chain. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
