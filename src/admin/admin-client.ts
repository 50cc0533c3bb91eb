import { request } from 'node:http';
import { AgentError, ErrorCodes, errorMessage } from '../errors.js';
import { describeAdminAddress, type AdminAddress } from '../config/admin-listen.js';

/**
 * GET `path` from a local admin endpoint. Resolves with the status and body (any status); throws
 * AgentError(UPSTREAM) naming the address when nothing answers within `timeoutMs`.
 */
export function adminGet(address: Exclude<AdminAddress, { kind: 'off' }>, path: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return adminCall(address, 'GET', path, timeoutMs);
}

/** Like adminGet, with any method (the admin endpoint's actions are POSTs). */
export function adminCall(address: Exclude<AdminAddress, { kind: 'off' }>, method: 'GET' | 'POST', path: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const target = address.kind === 'unix' ? { socketPath: address.path } : { host: address.host, port: address.port };
    const req = request({ ...target, method, path, timeout: timeoutMs, headers: { accept: '*/*' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => reject(fail(address, err)));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(fail(address, err)));
    req.end();
  });
}

/**
 * GET `path` and hand each line of the answer to `onLine` as it arrives (NDJSON: the logs route),
 * until the answer ends or `signal` aborts. Resolves with the status; a non-200 body is returned.
 */
export function adminLines(address: Exclude<AdminAddress, { kind: 'off' }>, path: string, onLine: (line: string) => void, signal?: AbortSignal): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const target = address.kind === 'unix' ? { socketPath: address.path } : { host: address.host, port: address.port };
    const req = request({ ...target, method: 'GET', path, headers: { accept: 'application/x-ndjson' }, ...(signal === undefined ? {} : { signal }) }, (res) => {
      res.setEncoding('utf8');
      let pending = '';
      let body = '';
      res.on('data', (text: string) => {
        if (res.statusCode !== 200) {
          body += text;
          return;
        }
        pending += text;
        let newline = pending.indexOf('\n');
        while (newline >= 0) {
          onLine(pending.slice(0, newline));
          pending = pending.slice(newline + 1);
          newline = pending.indexOf('\n');
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (err) => (signal?.aborted ? resolve({ status: res.statusCode ?? 0, body }) : reject(fail(address, err))));
    });
    req.on('error', (err) => (signal?.aborted ? resolve({ status: 0, body: '' }) : reject(fail(address, err))));
    req.end();
  });
}

function fail(address: Exclude<AdminAddress, { kind: 'off' }>, err: Error): AgentError {
  const code = (err as NodeJS.ErrnoException).code;
  const hint =
    code === 'ENOENT' || code === 'ECONNREFUSED'
      ? 'is the agent running? (`cyberun-agent run`, or `systemctl status cyberun-agent`)'
      : code === 'EACCES'
        ? 'permission denied: run as the agent\'s user or root'
        : 'check admin.listen';
  return new AgentError(ErrorCodes.UPSTREAM, `admin endpoint ${describeAdminAddress(address)} did not answer: ${errorMessage(err)}; ${hint}`, { cause: err });
}
