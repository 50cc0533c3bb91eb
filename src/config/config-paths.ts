/** Small helpers of the loader: key paths in nested objects, origins, suggestions, file checks. */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { CONFIG_KEYS, LEAF_PATHS } from './config-keys.js';
import type { Layer } from './config-layers.js';

// ---------------------------------------------------------------------------------------------
// Small helpers

export function originOf(layer: Layer, keyPath: string): string {
  return layer.origins.get(keyPath) ?? layer.fallback;
}

/** The key path an issue belongs to: its path up to the first leaf (list indices dropped). */
export function leafOf(at: string[]): string {
  for (let n = 1; n <= at.length; n++) {
    const prefix = at.slice(0, n).join('.');
    if (LEAF_PATHS.has(prefix)) return prefix;
  }
  return at.join('.');
}

export function unknownKeyMessage(keyPath: string): string {
  const parts = keyPath.split('.');
  const last = parts.at(-1) ?? keyPath;
  const parent = parts.slice(0, -1).join('.');
  const children = new Set<string>();
  for (const k of CONFIG_KEYS) {
    const segs = k.path.split('.');
    if (segs.slice(0, parts.length - 1).join('.') === parent && segs.length >= parts.length) children.add(segs[parts.length - 1] ?? '');
  }
  if (children.has(last)) {
    const leaves = CONFIG_KEYS.filter((k) => k.path.startsWith(`${keyPath}.`)).map((k) => k.path);
    return `is a section, not a key; set one of ${leaves.join(', ')}`;
  }
  let hint = didYouMean(last, [...children]);
  if (hint === '') {
    const elsewhere = CONFIG_KEYS.find((k) => k.path.split('.').at(-1) === last);
    if (elsewhere) hint = `; did you mean "${elsewhere.path}"?`;
  }
  return `unknown key${hint}`;
}

export function didYouMean(word: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 4)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best === undefined ? '' : `; did you mean "${best}"?`;
}

export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

export function resolvePath(value: string, base: string, home: string): string {
  const expanded = value === '~' ? home : value.startsWith('~/') ? path.join(home, value.slice(2)) : value;
  return path.resolve(base, expanded);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `key: null` (or an empty `key:`) means "not set": drop it, at any depth of mappings. */
export function stripNulls(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === null) continue;
    out[k] = isPlainObject(v) ? stripNulls(v) : v;
  }
  return out;
}

export function getPath(obj: Record<string, unknown>, keyPath: string): unknown {
  let node: unknown = obj;
  for (const seg of keyPath.split('.')) node = isPlainObject(node) ? node[seg] : undefined;
  return node;
}

export function deletePath(obj: Record<string, unknown>, keyPath: string): void {
  const segs = keyPath.split('.');
  const parent = segs.length === 1 ? obj : getPath(obj, segs.slice(0, -1).join('.'));
  if (isPlainObject(parent)) delete parent[segs.at(-1) ?? keyPath];
}

export function setPath(obj: Record<string, unknown>, keyPath: string, value: unknown): void {
  const segs = keyPath.split('.');
  let node = obj;
  for (const seg of segs.slice(0, -1)) {
    const next = node[seg];
    node = isPlainObject(next) ? next : (node[seg] = {});
  }
  node[segs.at(-1) ?? keyPath] = value;
}

export async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

export function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return code ?? 'unreadable';
}
