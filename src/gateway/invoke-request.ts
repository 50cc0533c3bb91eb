import { z } from 'zod';
import { HTTP_METHODS } from '../tunnel/protocol-stream.js';
import { formatZodIssues } from '../tunnel/protocol.js';

/** A checked invoke body (`POST /r/invoke/{slug}`). */
export interface InvokeRequest {
  method: (typeof HTTP_METHODS)[number];
  path: string;
  body: Buffer | undefined;
  headers: Record<string, string>;
}

const schema = z.object({
  method: z.enum(HTTP_METHODS),
  path: z.string().min(1).max(8192),
  body_base64: z.string().nullish(),
  headers: z.record(z.string(), z.string()).nullish(),
});

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Why `path` may not be relayed, or undefined when it may. Invoke paths are origin-form only: they
 * start with one `/`, never `//` (a network-path reference names a host), contain no scheme, no
 * backslash (some servers read it as `/`), no whitespace or control characters, and resolve
 * against a placeholder origin without changing it. Pure.
 */
export function invokePathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return `path "${truncate(path)}" must start with "/" (absolute URLs are not allowed)`;
  if (path.startsWith('//')) return `path "${truncate(path)}" must not start with "//" (it would name a host)`;
  if (/[\\\s\u0000-\u001f\u007f]/.test(path)) return 'path must not contain backslashes, whitespace or control characters';
  let resolved: URL;
  try {
    resolved = new URL(path, 'http://invoke.invalid');
  } catch {
    return `path "${truncate(path)}" is not a valid URL path`;
  }
  if (resolved.host !== 'invoke.invalid' || resolved.protocol !== 'http:') return `path "${truncate(path)}" names a host; give only a path (and query)`;
  return undefined;
}

/** Validates an invoke body; every problem in one message. Pure. */
export function parseInvokeRequest(body: unknown): { ok: true; value: InvokeRequest } | { ok: false; message: string } {
  const parsed = schema.safeParse(body);
  if (!parsed.success) return { ok: false, message: formatZodIssues(parsed.error.issues) };
  const { method, path, body_base64: b64, headers } = parsed.data;
  const problems: string[] = [];
  const pathProblem = invokePathProblem(path);
  if (pathProblem !== undefined) problems.push(pathProblem);
  if (b64 !== undefined && b64 !== null && !BASE64.test(b64)) problems.push('body_base64 is not valid base64 (standard alphabet, padded)');
  const lowered: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) problems.push(`headers: "${truncate(name)}" is not a valid header name`);
    else if (/[\r\n\u0000]/.test(value)) problems.push(`headers.${name}: value contains CR, LF or NUL`);
    else lowered[name.toLowerCase()] = value;
  }
  if (problems.length > 0) return { ok: false, message: problems.join('; ') };
  return { ok: true, value: { method, path, body: b64 ? Buffer.from(b64, 'base64') : undefined, headers: lowered } };
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}
