/**
 * The project's error vocabulary, in one place. docs/errors.md lists every code below with what it
 * means and what an operator does about it; test/unit/errors-doc.test.ts keeps the two in step.
 *
 * - `ErrorCodes`: the `code` of AgentError, the one error type thrown inside the agent and the
 *   gateway. Every foreign error (Docker Engine API, undici, ws, zod, fs) is translated into an
 *   AgentError at the adapter that met it, with the original kept as `cause`; nothing above the
 *   adapters branches on another library's code or on message text.
 * - `ProtocolErrorCodes`, `StreamResetCodes`, `CredentialErrorCodes`: the codes that travel on the
 *   tunnel (`error` frames, `stream.reset` frames, `credential.resolved` errors; docs/protocol.md).
 *
 * Callers branch on `code`, never on `message`. Messages are for people: they name the field or
 * object, what is wrong with it, and the fix. They never contain secrets.
 */
export const ErrorCodes = {
  /** A service definition broke the contract (see src/service-definition). */
  SPEC_INVALID: 'AGENT_ERR_SPEC_INVALID',
  /** cyberun-agent.yaml, CYBERUN_* env or flags are invalid. */
  CONFIG_INVALID: 'AGENT_ERR_CONFIG_INVALID',
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
  /** Image pull failed because the engine's data root is out of space (image GC runs at once). */
  IMAGE_PULL_NO_SPACE: 'AGENT_ERR_IMAGE_PULL_NO_SPACE',
  /** The image is not on the host and `pull.policy` is `never`. */
  IMAGE_NOT_PRESENT: 'AGENT_ERR_IMAGE_NOT_PRESENT',
  /** A volume of a service definition is refused by the host's policy (volumes.allowed_roots, the always-refused paths). */
  VOLUME_REFUSED: 'AGENT_ERR_VOLUME_REFUSED',
  /** The container could not be started (e.g. no GPU driver). */
  CONTAINER_START_FAILED: 'AGENT_ERR_CONTAINER_START_FAILED',
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
  /** The upstream refused the TCP connection (nothing was sent; another replica may take it). */
  UPSTREAM_REFUSED: 'AGENT_ERR_UPSTREAM_REFUSED',
  /** The upstream did not connect or send its response head in time. */
  UPSTREAM_TIMEOUT: 'AGENT_ERR_UPSTREAM_TIMEOUT',
  /** The external_url host resolves to an address the agent may not reach (loopback, private, metadata). */
  UPSTREAM_ADDRESS_REFUSED: 'AGENT_ERR_UPSTREAM_ADDRESS_REFUSED',
  /** A proxied request body exceeded proxy.max_body. */
  BODY_TOO_LARGE: 'AGENT_ERR_BODY_TOO_LARGE',
  /** The local admin endpoint could not listen (address taken, another agent on the same state dir). */
  ADMIN_LISTEN: 'AGENT_ERR_ADMIN_LISTEN',
  /** A gateway key file (api-keys, agent-keys) has a group or other permission bit set. */
  KEY_FILE_INSECURE: 'AGENT_ERR_KEY_FILE_INSECURE',
  /** A gateway key is malformed: wrong prefix, too short, duplicated, or a bad agent-keys line. */
  KEY_INVALID: 'AGENT_ERR_KEY_INVALID',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** `code` of `error` frames, either direction (docs/protocol.md, "error"). */
export const ProtocolErrorCodes = {
  INVALID_JSON: 'invalid_json',
  INVALID_FRAME: 'invalid_frame',
  UNKNOWN_TYPE: 'unknown_type',
  UNEXPECTED_FRAME: 'unexpected_frame',
  UNSUPPORTED_VERSION: 'unsupported_version',
  INVALID_SERVICE: 'invalid_service',
  APPLY_FAILED: 'apply_failed',
  /** A text (control) frame above MAX_CONTROL_FRAME_BYTES; it is not parsed. */
  FRAME_TOO_LARGE: 'frame_too_large',
  /** A hello whose agent_id the connection's agent key is not issued for (then closed, 4004). */
  AGENT_ID_REFUSED: 'agent_id_refused',
  /** A hello for an agent_id that a live connection holds (then closed, 4005). */
  AGENT_ID_IN_USE: 'agent_id_in_use',
  /** A status report about a service the gateway never gave this agent; it is ignored. */
  NOT_PLACED: 'not_placed',
  /** More frames of a kind than the connection's limit allows (hellos, credential requests). */
  RATE_LIMITED: 'rate_limited',
  /** The connection broke the invalid-frame limit; it is closed (4006). */
  TOO_MANY_INVALID_FRAMES: 'too_many_invalid_frames',
} as const;

/** `code` of `stream.reset` frames. Receivers treat unknown codes like `cancelled`. */
export const StreamResetCodes = {
  /** The sender no longer wants the stream (client went away, shutdown). */
  CANCELLED: 'cancelled',
  /** The peer sent more data than the credit it was granted, or a frame out of order. */
  PROTOCOL_ERROR: 'protocol_error',
  /** The upstream failed after the response head was sent. */
  UPSTREAM_FAILED: 'upstream_failed',
  /** The receiver refuses a new stream (duplicate id, too many streams, shutting down). */
  REFUSED: 'refused',
} as const;

export type StreamResetCode = (typeof StreamResetCodes)[keyof typeof StreamResetCodes];

/** `error.code` of a `credential.resolved` answer. */
export const CredentialErrorCodes = {
  /** The credential is not referenced by an external service placed on the asking agent. */
  FORBIDDEN: 'forbidden',
  /** No value is configured for the credential id. */
  NOT_FOUND: 'not_found',
  /** The gateway's credentials file is readable by group or others: it refuses to use it. */
  STORE_INSECURE: 'store_insecure',
  /** The gateway's credentials file is not valid JSON. */
  STORE_INVALID: 'store_invalid',
  /** The gateway has no credentials store, or it failed. */
  UNAVAILABLE: 'unavailable',
} as const;

export type CredentialErrorCode = (typeof CredentialErrorCodes)[keyof typeof CredentialErrorCodes];

export interface AgentErrorOptions {
  cause?: unknown;
  /**
   * A later attempt may succeed without anyone changing anything (a registry or engine blip, a
   * timeout), as opposed to a definitive answer (not found, denied, invalid). Retry policies read it.
   */
  retryable?: boolean;
  /** Structured data for people and logs (never secrets); code never branches on it. */
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
