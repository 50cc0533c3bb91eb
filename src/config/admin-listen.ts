import path from 'node:path';

/**
 * Where the local admin endpoint listens. It is never reachable from other hosts: a unix socket
 * (mode 0600, in the state dir by default) or a loopback TCP address.
 *
 * `admin.listen` values:
 *   unset                       → unix socket `<state_dir>/admin.sock`
 *   an absolute path            → unix socket at that path
 *   `127.0.0.1:9464`, `[::1]:9464`, `localhost:9464` → loopback TCP (port 0 = any free port)
 *   `off`                       → no admin endpoint (`status` and the image's HEALTHCHECK cannot work)
 */
export type AdminAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number } | { kind: 'off' };

export const DEFAULT_ADMIN_SOCKET = 'admin.sock';

/** Parses a validated `admin.listen` value; throws an Error naming the problem and the fix. */
export function parseAdminListen(value: string | undefined, stateDir: string): AdminAddress {
  if (value === undefined) return { kind: 'unix', path: path.join(stateDir, DEFAULT_ADMIN_SOCKET) };
  const text = value.trim();
  if (text === 'off') return { kind: 'off' };
  if (text.startsWith('/')) return { kind: 'unix', path: path.normalize(text) };
  const match = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):(\d{1,5})$/.exec(text);
  if (!match || Number(match[2]) > 65535) {
    throw new Error(
      `${JSON.stringify(text)} is not a local admin address; write an absolute unix socket path, a loopback address such as "127.0.0.1:9464", or "off"`,
    );
  }
  const host = match[1] === '[::1]' ? '::1' : match[1] ?? '127.0.0.1';
  return { kind: 'tcp', host, port: Number(match[2]) };
}

/** For messages: `unix:/var/lib/cyberun-agent/admin.sock`, `http://127.0.0.1:9464`. */
export function describeAdminAddress(address: AdminAddress): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  if (address.kind === 'tcp') return `http://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
  return 'off';
}
