import { describe, expect, it } from 'vitest';
import { AgentError, ErrorCodes, type ErrorCode } from '../../../src/errors.js';
import { engineMessage, translateDockerError } from '../../../src/runtime/docker-errors.js';
import type { EngineEndpoint } from '../../../src/runtime/engine-connection.js';

/**
 * dockerode-shaped errors → AgentError codes and messages. The shapes are what docker-modem 5
 * builds (lib/modem.js, buildPayload) and what Node raises; the TLS and socket messages are the
 * ones seen against stunnel and dockerd on this project's machines (test/integration/tls-engine.test.ts).
 */

/** docker-modem's error for an answer outside the call's status codes: `(HTTP code N) <reason> - <message> `. */
function modemError(statusCode: number, reason: string | undefined, json: unknown): Error {
  const cause = json !== null && typeof json === 'object' && !Buffer.isBuffer(json) ? ((json as { message?: string }).message ?? json) : json;
  return Object.assign(new Error(`(HTTP code ${statusCode}) ${reason ?? 'unexpected'} - ${String(cause)} `), { reason, statusCode, json });
}

function nodeError(message: string, code: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { code, ...extra });
}

const UNIX: EngineEndpoint = { transport: 'unix', display: 'unix:///var/run/docker.sock', publishHost: '127.0.0.1', tlsFiles: undefined };
const HTTP: EngineEndpoint = { transport: 'http', display: '10.0.0.5:2375', publishHost: '10.0.0.5', tlsFiles: undefined };
const TLS: EngineEndpoint = {
  transport: 'https',
  display: '127.0.0.1:2376',
  publishHost: '127.0.0.1',
  tlsFiles: { caFile: '/certs/ca.pem', certFile: '/certs/cert.pem', keyFile: '/certs/key.pem' },
};
const TLS_SYSTEM_CAS: EngineEndpoint = { ...TLS, tlsFiles: {} };
const SSH: EngineEndpoint = { transport: 'ssh', display: 'ssh://deploy@gpu-01:22', publishHost: 'gpu-01', tlsFiles: undefined };

const call = { call: 'inspect container', object: 'abc' };

describe('translateDockerError', () => {
  it.each<[string, unknown, EngineEndpoint, ErrorCode, boolean, RegExp]>([
    ['404 with the engine message', modemError(404, 'no such container', { message: 'No such container: abc' }), UNIX, ErrorCodes.DOCKER_NOT_FOUND, false, /^inspect container abc failed: No such container: abc$/],
    ['409 conflict', modemError(409, 'conflict', { message: 'Conflict. The container name "/x" is already in use' }), UNIX, ErrorCodes.DOCKER_CONFLICT, false, /failed: Conflict\. The container name/],
    ['500 server error', modemError(500, 'server error', { message: 'driver failed programming external connectivity' }), UNIX, ErrorCodes.DOCKER_API, false, /failed: driver failed programming/],
    ['400 with a text body (a proxy in front)', modemError(400, 'bad parameter', Buffer.from('bad request\n')), HTTP, ErrorCodes.DOCKER_API, false, /failed: bad request$/],
    ['an unexpected status without body', modemError(502, undefined, Buffer.alloc(0)), HTTP, ErrorCodes.DOCKER_API, false, /failed: the engine answered HTTP 502 without a message$/],
    ['no socket (ENOENT)', nodeError('connect ENOENT /var/run/docker.sock', 'ENOENT', { syscall: 'connect' }), UNIX, ErrorCodes.DOCKER_UNAVAILABLE, true, /the Docker Engine at unix:\/\/\/var\/run\/docker\.sock is not reachable \(ENOENT\).*check that dockerd runs and the agent may use its socket$/],
    ['socket permission (EACCES)', nodeError('connect EACCES /var/run/docker.sock', 'EACCES'), UNIX, ErrorCodes.DOCKER_UNAVAILABLE, true, /\(EACCES\)/],
    ['refused (ECONNREFUSED)', nodeError('connect ECONNREFUSED 10.0.0.5:2375', 'ECONNREFUSED'), HTTP, ErrorCodes.DOCKER_UNAVAILABLE, true, /at 10\.0\.0\.5:2375 is not reachable \(ECONNREFUSED\).*check that the engine listens there$/],
    ['plain HTTP to a TLS engine (ECONNRESET)', nodeError('read ECONNRESET', 'ECONNRESET'), HTTP, ErrorCodes.DOCKER_UNAVAILABLE, true, /if it expects TLS \(port 2376\), set DOCKER_TLS_VERIFY=1 with DOCKER_CERT_PATH, or docker\.tls\.\*$/],
    ['happy-eyeballs AggregateError', Object.assign(new AggregateError([nodeError('connect ECONNREFUSED ::1:2375', 'ECONNREFUSED')], '')), HTTP, ErrorCodes.DOCKER_UNAVAILABLE, true, /\(ECONNREFUSED\)/],
    ['ETIMEDOUT', nodeError('connect ETIMEDOUT 10.0.0.5:2375', 'ETIMEDOUT'), HTTP, ErrorCodes.DOCKER_TIMEOUT, true, /failed: timed out: connect ETIMEDOUT/],
    ['wrong CA (self-signed in chain)', nodeError('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN'), TLS, ErrorCodes.DOCKER_TLS, false, /^inspect container abc failed: TLS handshake with the Docker Engine at 127\.0\.0\.1:2376 failed \(self-signed certificate in certificate chain\): its certificate does not verify against \/certs\/ca\.pem; check docker\.tls\.ca_file \/ \$DOCKER_CERT_PATH\/ca\.pem$/],
    ['wrong CA (leaf)', nodeError('unable to verify the first certificate', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'), TLS, ErrorCodes.DOCKER_TLS, false, /\(unable to verify the first certificate\): its certificate does not verify against \/certs\/ca\.pem/],
    ['no CA file, system CAs', nodeError('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN'), TLS_SYSTEM_CAS, ErrorCodes.DOCKER_TLS, false, /not signed by a CA the system trusts; check docker\.tls\.ca_file \/ \$DOCKER_CERT_PATH\/ca\.pem/],
    ['expired engine certificate', nodeError('certificate has expired', 'CERT_HAS_EXPIRED'), TLS, ErrorCodes.DOCKER_TLS, false, /\(certificate has expired\)/],
    ['name not in the certificate', nodeError("Hostname/IP does not match certificate's altnames: Host: localhost. is not cert's CN: server", 'ERR_TLS_CERT_ALTNAME_INVALID'), TLS, ErrorCodes.DOCKER_TLS, false, /not issued for the name in docker\.host/],
    [
      'client certificate from another CA (alert unknown ca)',
      nodeError('804C220B7B7F0000:error:0A000418:SSL routines:ssl3_read_bytes:tlsv1 alert unknown ca:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 48\n', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'),
      TLS,
      ErrorCodes.DOCKER_TLS,
      false,
      /failed \(tlsv1 alert unknown ca\): the engine refused the client certificate \/certs\/cert\.pem; check docker\.tls\.cert_file \/ docker\.tls\.key_file/,
    ],
    [
      'no client certificate (alert certificate required)',
      nodeError('804C220B7B7F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 116\n', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'),
      TLS_SYSTEM_CAS,
      ErrorCodes.DOCKER_TLS,
      false,
      /\(tlsv13 alert certificate required\): the engine asks for a client certificate and none is set/,
    ],
    [
      'TLS to a plain-HTTP engine',
      nodeError('40A8C8F1DB7F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/openssl/ssl/record/ssl3_record.c:354:\n', 'ERR_SSL_WRONG_VERSION_NUMBER'),
      TLS,
      ErrorCodes.DOCKER_TLS,
      false,
      /\(wrong version number\): the engine does not answer in TLS; if it serves plain HTTP \(port 2375\), use tcp:\/\/ without docker\.tls\.\* files/,
    ],
    [
      'TLS to a plain-HTTP engine, as Node 20 reports it (EPROTO)',
      nodeError('write EPROTO 80FC0CF5B77F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/openssl/ssl/record/ssl3_record.c:350:\n', 'EPROTO'),
      TLS,
      ErrorCodes.DOCKER_TLS,
      false,
      /failed \(wrong version number\): the engine does not answer in TLS/,
    ],
    ['EPROTO that is not TLS', nodeError('read EPROTO', 'EPROTO'), UNIX, ErrorCodes.DOCKER_API, false, /failed: read EPROTO$/],
    ['another OpenSSL failure', nodeError('error:0A000086:SSL routines::certificate verify failed', 'ERR_SSL_CERTIFICATE_VERIFY_FAILED'), TLS, ErrorCodes.DOCKER_TLS, false, /check docker\.tls\.ca_file, docker\.tls\.cert_file, docker\.tls\.key_file/],
    ['ssh: no key the host accepts', Object.assign(new Error('All configured authentication methods failed'), { level: 'client-authentication' }), SSH, ErrorCodes.DOCKER_UNAVAILABLE, true, /at ssh:\/\/deploy@gpu-01:22 is not reachable \(client-authentication\): All configured authentication methods failed; check .*ssh-agent at \$SSH_AUTH_SOCK/],
    ['ssh: handshake timeout', Object.assign(new Error('Timed out while waiting for handshake'), { level: 'client-timeout' }), SSH, ErrorCodes.DOCKER_TIMEOUT, true, /timed out: Timed out while waiting for handshake/],
    ['ssh: refused', nodeError('connect ECONNREFUSED 10.0.0.9:22', 'ECONNREFUSED', { level: 'client-socket' }), SSH, ErrorCodes.DOCKER_UNAVAILABLE, true, /\(ECONNREFUSED\)/],
    ['something else', new TypeError('Cannot read properties of undefined'), UNIX, ErrorCodes.DOCKER_API, false, /failed: Cannot read properties of undefined$/],
  ])('%s', (_name, err, engine, code, retryable, message) => {
    const translated = translateDockerError(err, call, engine);
    expect(translated).toBeInstanceOf(AgentError);
    expect(translated.code).toBe(code);
    expect(translated.retryable).toBe(retryable);
    expect(translated.message).toMatch(message);
    expect(translated.cause).toBe(err);
  });

  it.each<[string, unknown]>([
    ['an AbortError', Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' })],
    ['a socket error', nodeError('connect ECONNREFUSED 10.0.0.5:2375', 'ECONNREFUSED')],
    ['a TLS error', nodeError('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN')],
  ])('our own deadline makes %s DOCKER_TIMEOUT, naming the engine and the deadline', (_name, err) => {
    const translated = translateDockerError(err, { ...call, timedOutAfterMs: 300 }, HTTP);
    expect(translated.code).toBe(ErrorCodes.DOCKER_TIMEOUT);
    expect(translated.retryable).toBe(true);
    expect(translated.message).toBe('inspect container abc failed: no answer from the Docker Engine at 10.0.0.5:2375 within 300 ms');
  });

  it('keeps the HTTP status in details, and passes an AgentError through unchanged', () => {
    expect(translateDockerError(modemError(404, 'no such image', { message: 'No such image: x:1' }), call, UNIX).details).toEqual({ call: 'inspect container', object: 'abc', statusCode: 404 });
    const own = new AgentError(ErrorCodes.ABORTED, 'aborted');
    expect(translateDockerError(own, call, UNIX)).toBe(own);
  });
});

describe('engineMessage', () => {
  it.each<[string, unknown, string]>([
    ['the engine JSON message', modemError(404, 'no such container', { message: ' No such container: abc\n' }), 'No such container: abc'],
    ['a text body parsed as nothing (Buffer)', modemError(404, 'no such container', Buffer.from('page not found\n')), 'page not found'],
    ['a streamed text body (string)', modemError(500, 'server error', 'pull failed badly\n'), 'pull failed badly'],
    ['a streamed JSON body: docker-modem puts it only into the message', Object.assign(modemError(404, undefined, { message: 'pull access denied for acme/nope' }), { json: null }), 'pull access denied for acme/nope'],
    ['no body', modemError(304, 'container already started', Buffer.alloc(0)), 'the engine answered HTTP 304 (container already started) without a message'],
    ['a plain error', new Error('socket hang up'), 'socket hang up'],
    ['not an error', 'weird', 'weird'],
  ])('%s', (_name, err, expected) => {
    expect(engineMessage(err)).toBe(expected);
  });
});
