import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type Dockerode from 'dockerode';
import { AgentError, ErrorCodes } from '../errors.js';

/**
 * Where the Docker Engine is and how to reach it, as dockerode constructor options.
 *
 *   (no host)                 unix socket `socketPath`
 *   unix:///path              that unix socket
 *   tcp://h[:2375]            plain HTTP; with TLS files: HTTPS (default port 2376), like DOCKER_TLS_VERIFY
 *   http://h[:2375]           plain HTTP (TLS files are refused: they would be ignored)
 *   https://h[:2376]          HTTPS; the CA file if given, else the system CAs; client cert if given
 *   ssh://[user@]h[:22]       ssh to the host, keys from the ssh-agent at $SSH_AUTH_SOCK, then
 *                             `docker system dial-stdio` there (docker-modem's ssh transport)
 *
 * TLS verification is never switched off. The options are complete: docker-modem merges its own
 * reading of DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH / DOCKER_CLIENT_TIMEOUT under what
 * it is given, and the agent's configuration (src/config) has already decided those, so every key
 * it would take from the environment is set here, if only to undefined.
 */

/** The PEM files of a TLS connection to the engine, by path (named in error messages). */
export interface EngineTlsFiles {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

/** The files' contents, read and checked by loadEngineTls. */
export interface EngineTls {
  files: EngineTlsFiles;
  ca?: string;
  cert?: string;
  key?: string;
}

export interface EngineConnectionOptions {
  socketPath: string;
  host?: string | undefined;
  tls?: EngineTls | undefined;
  /** The ssh-agent socket for ssh:// hosts; default $SSH_AUTH_SOCK. */
  sshAuthSock?: string | undefined;
}

/** The engine as errors and addressing see it. */
export interface EngineEndpoint {
  transport: 'unix' | 'http' | 'https' | 'ssh';
  /** For messages: `unix:///var/run/docker.sock`, `127.0.0.1:2376`, `ssh://deploy@gpu-01:22`. */
  display: string;
  /** Where ports published by the engine are reached: the engine's host name, 127.0.0.1 for a socket. */
  publishHost: string;
  /** TLS files in use (https only), for messages that say which file to fix. */
  tlsFiles: EngineTlsFiles | undefined;
}

export interface EngineConnection {
  dockerOptions: Dockerode.DockerOptions;
  endpoint: EngineEndpoint;
}

function invalid(message: string): AgentError {
  return new AgentError(ErrorCodes.CONFIG_INVALID, message);
}

function hasTls(tls: EngineTls | undefined): tls is EngineTls {
  return tls !== undefined && (tls.ca !== undefined || tls.cert !== undefined || tls.key !== undefined);
}

/** Throws CONFIG_INVALID for a host it cannot reach as asked (the config loader reports the same earlier). */
export function engineConnection(options: EngineConnectionOptions): EngineConnection {
  const neutral = { socketPath: undefined, host: undefined, port: undefined, protocol: undefined, ca: undefined, cert: undefined, key: undefined, timeout: undefined, username: undefined };
  const host = options.host?.trim() ?? '';
  if (host === '' || host.startsWith('unix://')) {
    const socketPath = host === '' ? options.socketPath : host.slice('unix://'.length);
    return {
      dockerOptions: { ...neutral, socketPath },
      endpoint: { transport: 'unix', display: `unix://${socketPath}`, publishHost: '127.0.0.1', tlsFiles: undefined },
    };
  }
  const match = /^(tcp|http|https|ssh):\/\//.exec(host);
  if (!match) throw invalid(`docker.host ${JSON.stringify(host)} is not a Docker host; write tcp://host:2375, https://host:2376, ssh://user@host or unix:///path/to/docker.sock`);
  const scheme = match[1] as 'tcp' | 'http' | 'https' | 'ssh';
  let url: URL;
  try {
    url = new URL(host.replace(/^tcp:/, 'http:'));
  } catch {
    throw invalid(`docker.host ${JSON.stringify(host)} is not a valid URL; write e.g. tcp://10.0.0.5:2376`);
  }
  // URL.hostname keeps an IPv6 literal's brackets; node:http and ssh2 want the bare address.
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const tls = options.tls;

  if (scheme === 'ssh') {
    if (hasTls(tls)) throw invalid('docker.tls.* files are set but docker.host is ssh://: ssh carries its own encryption; remove the docker.tls.* keys (or DOCKER_TLS_VERIFY)');
    const port = url.port === '' ? 22 : Number(url.port);
    const username = url.username === '' ? undefined : decodeURIComponent(url.username);
    const agent = options.sshAuthSock ?? process.env['SSH_AUTH_SOCK'];
    return {
      dockerOptions: { ...neutral, protocol: 'ssh', host: hostname, port, username, sshOptions: agent === undefined ? {} : { agent } },
      endpoint: { transport: 'ssh', display: `ssh://${username === undefined ? '' : `${username}@`}${url.host.replace(/:\d+$/, '')}:${port}`, publishHost: hostname, tlsFiles: undefined },
    };
  }
  if (scheme === 'http' && hasTls(tls)) {
    throw invalid('docker.tls.* files are set but docker.host is http://, which is plain HTTP; write tcp:// or https:// to use TLS, or remove the docker.tls.* keys (or DOCKER_TLS_VERIFY)');
  }
  const secure = scheme === 'https' || (scheme === 'tcp' && hasTls(tls));
  const port = url.port === '' ? (secure ? 2376 : 2375) : Number(url.port);
  const display = `${url.host.replace(/:\d+$/, '')}:${port}`;
  if (!secure) {
    return {
      dockerOptions: { ...neutral, protocol: 'http', host: hostname, port },
      endpoint: { transport: 'http', display, publishHost: hostname, tlsFiles: undefined },
    };
  }
  return {
    dockerOptions: { ...neutral, protocol: 'https', host: hostname, port, ca: tls?.ca, cert: tls?.cert, key: tls?.key },
    endpoint: { transport: 'https', display, publishHost: hostname, tlsFiles: tls?.files ?? {} },
  };
}

/**
 * Reads the TLS files and checks that Node's TLS accepts them (PEM syntax, a key that matches its
 * certificate), so a broken file is a configuration error naming it, not a failed handshake later.
 * A certificate needs its key and the other way round. Throws CONFIG_INVALID.
 */
export async function loadEngineTls(files: EngineTlsFiles): Promise<EngineTls | undefined> {
  const { caFile, certFile, keyFile } = files;
  if (caFile === undefined && certFile === undefined && keyFile === undefined) return undefined;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw invalid(
      `docker.tls.${certFile === undefined ? 'key_file' : 'cert_file'} is set without docker.tls.${certFile === undefined ? 'cert_file' : 'key_file'}; a client certificate needs its key: set both, or neither`,
    );
  }
  const read = async (file: string | undefined, key: string): Promise<string | undefined> => {
    if (file === undefined) return undefined;
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (code ?? 'unreadable');
      throw new AgentError(ErrorCodes.CONFIG_INVALID, `cannot read docker.tls.${key} ${file}: ${reason}; fix the path or the file's permissions`, { cause: err });
    }
  };
  const tls: EngineTls = { files };
  const [ca, cert, key] = await Promise.all([read(caFile, 'ca_file'), read(certFile, 'cert_file'), read(keyFile, 'key_file')]);
  if (ca !== undefined) tls.ca = ca;
  if (cert !== undefined) tls.cert = cert;
  if (key !== undefined) tls.key = key;
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw invalid(`docker.tls.ca_file ${caFile} holds no PEM certificate; name the CA certificate (ca.pem) that signed the engine's certificate`);
  }
  try {
    createSecureContext({ ca, cert, key });
  } catch (err) {
    const detail = err instanceof Error ? err.message.replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/i, '') : String(err);
    throw new AgentError(
      ErrorCodes.CONFIG_INVALID,
      `docker.tls files are not usable (${detail}): check that ${certFile ?? 'cert_file'} is a PEM certificate and ${keyFile ?? 'key_file'} its PEM private key${ca === undefined ? '' : `, and ${caFile} a PEM CA certificate`}`,
      { cause: err },
    );
  }
  return tls;
}
