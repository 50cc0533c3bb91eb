/**
 * The field checks of the service definition schema: each returns a problem text (completing
 * "<path> <value> …") or undefined. Pure.
 */
import path from 'node:path';

import * as z from 'zod';

export const SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{1,98}[a-z0-9]$/;
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** Marks a custom issue whose message is already a full sentence (it names its own path). */
export const FULL = { full: true } as const;

export type Check = (value: string) => string | undefined;

export function stringWith(typeMessage: string, ...checks: Check[]) {
  return z.string({ error: typeMessage }).superRefine((value, ctx) => {
    for (const check of checks) {
      const problem = check(value);
      if (problem !== undefined) {
        ctx.addIssue({ code: 'custom', message: problem, input: value });
        return;
      }
    }
  });
}

/** Integer in [min, max]; a custom check, because zod's `.int()` stops the cross-field checks. */
export function integer(min: number, max: number, message: string) {
  return z
    .number({ error: message })
    .refine((n) => Number.isSafeInteger(n) && n >= min && n <= max, { message });
}

export const maxLength = (max: number): Check => (v) => (v.length > max ? `must be at most ${max} characters (got ${v.length})` : undefined);

export function httpPathProblem(v: string, example: string): string | undefined {
  if (!v.startsWith('/') || v.startsWith('//')) return `must be a path on the container starting with '/' (not '//'), e.g. "${example}"`;
  if (/\s/.test(v) || CONTROL_CHARS.test(v)) return 'must not contain whitespace or control characters (percent-encode them)';
  return undefined;
}

export function fsPathProblem(v: string, allowRoot: boolean): string | undefined {
  if (!v.startsWith('/')) return `must be an absolute path (starting with '/')`;
  if (v.includes(':') || CONTROL_CHARS.test(v)) return `must not contain ':' or control characters (Docker's bind syntax splits on ':')`;
  const normal = path.posix.normalize(v);
  const canonical = normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
  if (canonical !== v) return `must be a normalized path without '.', '..', '//' or a trailing '/' (did you mean "${canonical}"?)`;
  if (!allowRoot && v === '/') return `must not be '/' (a mount cannot replace the container's root)`;
  return undefined;
}

export function externalUrlProblem(v: string): string | undefined {
  if (v.length > 2048) return `must be at most 2048 characters (got ${v.length})`;
  if (!v.startsWith('https://')) return 'must start with https:// (plain http is refused)';
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return 'is not a valid URL; expected https://host[:port][/path]';
  }
  if (url.hostname === '') return 'must name a host, e.g. https://api.example.com/v1';
  if (url.username !== '' || url.password !== '') {
    return 'must not embed credentials (user:password@); store them as a credential and set external_auth_credential_id';
  }
  return undefined;
}

export const nullAsAbsent = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
export const emptyAsAbsent = (v: string | null | undefined): string | undefined => (v === null || v === '' ? undefined : v);
