/**
 * How validation problems of a service definition read: JSON paths like `env_config[1].env_name`,
 * values shown truncated (URL credentials masked, env values never shown), and "did you mean"
 * suggestions for unknown fields. Pure.
 */
import type { DefinitionIssue } from './types.js';

/** Anything under env_config except an env_name may be a secret: its value is never shown. */
const SECRET_PATH = /^env_config(?!\[\d+\]\.env_name$)/;
const SHOWN_CHARS = 60;

export function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** The value as a message shows it: strings quoted and truncated, URL credentials masked. */
export function describeValue(value: unknown, at: string): string {
  if (SECRET_PATH.test(at)) return `(${kindOf(value)}, value hidden)`;
  if (typeof value === 'string') {
    const masked = value.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/?#@]*@/, '$1***@');
    if (masked.length <= SHOWN_CHARS) return JSON.stringify(masked);
    return `${JSON.stringify(`${masked.slice(0, SHOWN_CHARS)}…`)} (${value.length} chars)`;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return `(${kindOf(value)})`;
}

/** `['env_config', 1, 'env_name']` → `env_config[1].env_name`; `[]` → `(root)`. */
export function formatPath(parts: readonly (string | number)[]): string {
  if (parts.length === 0) return '(root)';
  let out = '';
  for (const part of parts) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

export function valueAt(input: unknown, parts: readonly (string | number)[]): unknown {
  let current = input;
  for (const part of parts) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string | number, unknown>)[part];
  }
  return current;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, substitution));
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}

/** The known field an unknown key most likely meant (`replicas` → `replica_count`), if any. */
function suggestField(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const close = known.filter((k) => editDistance(lower, k) <= 2);
  if (close[0] !== undefined) return close[0];
  const stem = lower.replace(/s$/, '');
  if (stem.length < 3) return undefined;
  return known.find((k) => k.includes(stem) || stem.includes(k));
}

export function unknownFieldIssue(parts: readonly (string | number)[], key: string, known: readonly string[]): DefinitionIssue {
  const at = formatPath([...parts, key]);
  const guess = suggestField(key, known);
  return { path: at, message: `${at} is not a known field${guess === undefined ? '' : ` (did you mean ${guess}?)`}: remove it` };
}

/** All issues, one per line; each message names its own path. */
export function formatIssues(issues: DefinitionIssue[]): string {
  return issues.map((issue) => issue.message).join('\n');
}
