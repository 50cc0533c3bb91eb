import { AgentError, ErrorCodes, type ErrorCode } from '../errors.js';
import type { EngineEndpoint } from './engine-connection.js';

/**
 * Translation of dockerode failures into AgentError, at the adapter edge. dockerode (through
 * docker-modem) rejects with one of:
 *
 * - an engine answer outside the call's success codes: an Error "(HTTP code 404) no such
 *   container - <engine message>" carrying `statusCode`, `reason` (dockerode's words for the
 *   status) and `json` (the parsed body, normally `{"message": …}`; a Buffer or string when the
 *   body is not JSON);
 * - a socket or TLS failure as Node raised it, carrying `code` (ENOENT, ECONNREFUSED,
 *   SELF_SIGNED_CERT_IN_CHAIN, ERR_SSL_…);
 * - for ssh:// engines, ssh2's errors, carrying `level` (client-socket, client-authentication, …);
 * - the AbortError of our own signal (engine-call.ts turns that into DOCKER_TIMEOUT or ABORTED).
 *
 * | what the call gave                                      | code               | retryable |
 * |---------------------------------------------------------|--------------------|-----------|
 * | HTTP 404                                                | DOCKER_NOT_FOUND   | no        |
 * | HTTP 409                                                | DOCKER_CONFLICT    | no        |
 * | any other HTTP status                                   | DOCKER_API         | no        |
 * | our call's deadline fired / ETIMEDOUT / ssh timeout     | DOCKER_TIMEOUT     | yes       |
 * | certificate verification codes, ERR_TLS_*, ERR_SSL_*    | DOCKER_TLS         | no        |
 * | ECONNREFUSED, ENOENT, EACCES, ECONNRESET, EPIPE, …, ssh | DOCKER_UNAVAILABLE | yes       |
 * | anything else                                           | DOCKER_API         | no        |
 *
 * The message names the call and the object ("start container abc123 failed: …") followed by the
 * engine's own message, or for connection failures the engine's address and what to check; the
 * original error is kept as `cause`.
 */

/** What was being done, for messages: `call` is a verb phrase, `object` names the target. */
export interface DockerCall {
  call: string;
  object: string;
  /** Set when the call's own timeout fired; the error is then DOCKER_TIMEOUT whatever it says. */
  timedOutAfterMs?: number;
}

const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);
/** OpenSSL's verification results for the engine's certificate, as Node reports them in `code`. */
const SERVER_CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
]);
/** The peer answered something that is not TLS. */
const NOT_TLS_CODES = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST']);

interface EngineErrorShape {
  statusCode?: unknown;
  code?: unknown;
  name?: unknown;
  message?: unknown;
  json?: unknown;
  level?: unknown;
}

/** The HTTP status the engine answered with, when the error came from an engine response. */
export function dockerStatusCode(err: unknown): number | undefined {
  const status = (err as EngineErrorShape | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** The engine's own message (`{"message": …}` body, or a text body), else the error's message without dockerode's prefix. */
export function engineMessage(err: unknown): string {
  const json = (err as EngineErrorShape | null)?.json;
  if (json !== null && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string') {
    return (json as { message: string }).message.trim();
  }
  const text = Buffer.isBuffer(json) ? json.toString('utf8') : typeof json === 'string' ? json : '';
  if (text.trim() !== '') return text.trim();
  const status = dockerStatusCode(err);
  if (status !== undefined) {
    // For streamed calls docker-modem puts the body only into the message: "(HTTP code 404) <reason> - <body> ".
    const fromMessage = err instanceof Error ? err.message.replace(/^\(HTTP code \d+\) .*? - /s, '').trim() : '';
    if (fromMessage !== '' && !(err instanceof Error && fromMessage === err.message.trim())) return fromMessage;
    const reason = (err as { reason?: unknown }).reason;
    return `the engine answered HTTP ${status}${typeof reason === 'string' && reason !== '' ? ` (${reason})` : ''} without a message`;
  }
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

type TlsFailure = 'server-cert' | 'altname' | 'client-cert' | 'not-tls' | 'other';

function tlsFailure(code: string | undefined, err: unknown): TlsFailure | undefined {
  if (code === undefined) return undefined;
  if (code === 'EPROTO') {
    // Node 20 reports some handshake failures as "write EPROTO <OpenSSL message>".
    const reason = opensslReason(err);
    if (reason === undefined) return undefined;
    if (/wrong version number|packet length too long|http request/i.test(reason)) return 'not-tls';
    return /alert/i.test(reason) ? 'client-cert' : 'other';
  }
  if (SERVER_CERT_CODES.has(code)) return 'server-cert';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'altname';
  if (NOT_TLS_CODES.has(code)) return 'not-tls';
  // The engine (or a TLS proxy in front of it) sent an alert: it did not accept our certificate.
  if (code.startsWith('ERR_SSL_') && code.includes('ALERT')) return 'client-cert';
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code.startsWith('ERR_OSSL_')) return 'other';
  return undefined;
}

/** ssh2's error classes (`level`): a failed ssh connection to an ssh:// engine. */
function sshLevel(err: unknown): string | undefined {
  const level = (err as EngineErrorShape | null)?.level;
  return typeof level === 'string' ? level : undefined;
}

export function classifyDockerError(err: unknown, timedOut: boolean): { code: ErrorCode; retryable: boolean } {
  if (err instanceof AgentError) return { code: err.code, retryable: err.retryable };
  const status = dockerStatusCode(err);
  if (status === 404) return { code: ErrorCodes.DOCKER_NOT_FOUND, retryable: false };
  if (status === 409) return { code: ErrorCodes.DOCKER_CONFLICT, retryable: false };
  if (status !== undefined) return { code: ErrorCodes.DOCKER_API, retryable: false };
  const code = errnoCode(err);
  const level = sshLevel(err);
  if (timedOut || (code !== undefined && TIMEOUT_CODES.has(code)) || (err as EngineErrorShape | null)?.name === 'TimeoutError' || level === 'client-timeout') {
    return { code: ErrorCodes.DOCKER_TIMEOUT, retryable: true };
  }
  // Not retryable: a certificate that does not verify today will not verify in a second either.
  if (tlsFailure(code, err) !== undefined) return { code: ErrorCodes.DOCKER_TLS, retryable: false };
  if ((code !== undefined && UNAVAILABLE_CODES.has(code)) || level !== undefined) return { code: ErrorCodes.DOCKER_UNAVAILABLE, retryable: true };
  return { code: ErrorCodes.DOCKER_API, retryable: false };
}

/** OpenSSL messages read "[write EPROTO ]<hex>:error:<hex>:SSL routines:<function>:<reason>:<file>:<line>:…": the reason. */
function opensslReason(err: unknown): string | undefined {
  const message = err instanceof Error ? err.message : String(err);
  return /[0-9A-F]+:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+):/i.exec(message)?.[1]?.trim();
}

function tlsReason(err: unknown): string {
  return opensslReason(err) ?? (err instanceof Error ? err.message : String(err)).trim();
}

function tlsDetail(err: unknown, engine: EngineEndpoint | undefined): string {
  const failure = tlsFailure(errnoCode(err), err) ?? 'other';
  const at = engine === undefined ? 'the Docker Engine' : `the Docker Engine at ${engine.display}`;
  const files = engine?.tlsFiles ?? {};
  const head = `TLS handshake with ${at} failed (${tlsReason(err)})`;
  switch (failure) {
    case 'server-cert':
      return files.caFile === undefined
        ? `${head}: its certificate is not signed by a CA the system trusts; check docker.tls.ca_file / $DOCKER_CERT_PATH/ca.pem (set it to the CA that signed the engine's certificate)`
        : `${head}: its certificate does not verify against ${files.caFile}; check docker.tls.ca_file / $DOCKER_CERT_PATH/ca.pem`;
    case 'altname':
      return `${head}: its certificate is not issued for the name in docker.host; connect by a name or address the certificate lists, or reissue it with that subjectAltName`;
    case 'client-cert':
      return files.certFile === undefined
        ? `${head}: the engine asks for a client certificate and none is set; check docker.tls.cert_file / docker.tls.key_file ($DOCKER_CERT_PATH/cert.pem, key.pem)`
        : `${head}: the engine refused the client certificate ${files.certFile}; check docker.tls.cert_file / docker.tls.key_file ($DOCKER_CERT_PATH/cert.pem, key.pem)`;
    case 'not-tls':
      return `${head}: the engine does not answer in TLS; if it serves plain HTTP (port 2375), use tcp:// without docker.tls.* files (unset DOCKER_TLS_VERIFY)`;
    default:
      return `${head}: check docker.tls.ca_file, docker.tls.cert_file, docker.tls.key_file ($DOCKER_CERT_PATH/ca.pem, cert.pem, key.pem)`;
  }
}

function unavailableDetail(err: unknown, engine: EngineEndpoint | undefined): string {
  const code = errnoCode(err) ?? sshLevel(err) ?? 'connection failed';
  const reason = engineMessage(err);
  if (engine === undefined) return `the Docker Engine is not reachable (${code}): ${reason}; check that dockerd runs and the agent may use its socket`;
  const head = `the Docker Engine at ${engine.display} is not reachable (${code}): ${reason}`;
  switch (engine.transport) {
    case 'unix':
      return `${head}; check that dockerd runs and the agent may use its socket`;
    case 'ssh':
      return `${head}; check that the host is reachable, that the ssh-agent at $SSH_AUTH_SOCK holds a key it accepts for that user, and that docker runs there (the agent runs \`docker system dial-stdio\` over ssh)`;
    case 'http':
      // A TLS engine drops a plain-HTTP request without an answer.
      return code === 'ECONNRESET' || code === 'EPIPE'
        ? `${head}; check that the engine listens there, and if it expects TLS (port 2376), set DOCKER_TLS_VERIFY=1 with DOCKER_CERT_PATH, or docker.tls.*`
        : `${head}; check that the engine listens there`;
    default:
      return `${head}; check that the engine listens there`;
  }
}

/**
 * Translates any error of an Engine API call. An AgentError passes through unchanged. `engine`
 * (where the call went) lets connection and TLS failures say which address and file to check.
 */
export function translateDockerError(err: unknown, what: DockerCall, engine?: EngineEndpoint): AgentError {
  if (err instanceof AgentError) return err;
  const timedOut = what.timedOutAfterMs !== undefined;
  const { code, retryable } = classifyDockerError(err, timedOut);
  const status = dockerStatusCode(err);
  let detail: string;
  if (code === ErrorCodes.DOCKER_TIMEOUT) {
    const at = engine === undefined ? 'the Docker Engine' : `the Docker Engine at ${engine.display}`;
    detail = timedOut ? `no answer from ${at} within ${what.timedOutAfterMs} ms` : `timed out: ${engineMessage(err)}`;
  } else if (code === ErrorCodes.DOCKER_TLS) {
    detail = tlsDetail(err, engine);
  } else if (code === ErrorCodes.DOCKER_UNAVAILABLE) {
    detail = unavailableDetail(err, engine);
  } else {
    detail = engineMessage(err);
  }
  return new AgentError(code, `${what.call} ${what.object} failed: ${detail}`, {
    cause: err,
    retryable,
    details: { call: what.call, object: what.object, ...(status === undefined ? {} : { statusCode: status }) },
  });
}
