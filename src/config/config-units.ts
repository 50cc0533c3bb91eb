/**
 * Units of the config file: durations ("30s", "1h30m") and sizes ("10GiB") read and written back
 * exactly, and how a value is shown in a message (never an agent key). Pure.
 */
import { AgentError, ErrorCodes } from '../errors.js';

const MAX_TIMER_MS = 2_147_483_647; // setTimeout's limit; longer delays fire at once.

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

export function invalid(message: string): AgentError {
  return new AgentError(ErrorCodes.CONFIG_INVALID, message);
}

/** A value for a message: quoted, truncated, and never anything that looks like an agent key. */
export function showValue(value: unknown): string {
  if (typeof value === 'string') {
    if (/ak-[A-Za-z0-9_-]{6,}/.test(value)) return '<a value that looks like an agent key, not shown>';
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a mapping' : typeof value;
}

/**
 * Milliseconds from "500ms", "30s", "5m", "2h", "1d", compounds such as "1h30m", fractions such as
 * "1.5s", or integer milliseconds (number or digit string). Throws AgentError(CONFIG_INVALID).
 */
export function parseDuration(value: string | number): number {
  const fix = 'write a number with a unit (ms, s, m, h, d) such as "500ms", "30s", "5m", "1h30m", or integer milliseconds';
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw invalid(`${value} is not an integer number of milliseconds; ${fix}`);
    ms = value;
  } else {
    const text = value.trim();
    if (/^\d+$/.test(text)) {
      ms = Number(text);
    } else if (/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(text)) {
      ms = 0;
      for (const part of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) {
        ms += Number(part[1]) * (DURATION_UNITS[part[2] ?? ''] ?? Number.NaN);
      }
      ms = Math.round(ms);
    } else {
      throw invalid(`${showValue(value)} is not a duration; ${fix}`);
    }
  }
  if (ms < 0) throw invalid(`${showValue(value)} is negative; a duration is 0 or more`);
  if (ms > MAX_TIMER_MS) throw invalid(`${showValue(value)} is longer than 24 days, the longest timer Node.js can run`);
  return ms;
}

/**
 * Bytes from "512MiB", "10GiB" (binary), "10GB" (decimal), "1.5GiB", or integer bytes (number or
 * digit string). Units are case-insensitive. Throws AgentError(CONFIG_INVALID).
 */
export function parseSize(value: string | number): number {
  const fix = 'write bytes or a number with a unit such as "512MiB", "10GiB", "500MB"';
  let bytes: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw invalid(`${value} is not an integer number of bytes; ${fix}`);
    bytes = value;
  } else {
    const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
    const factor = match ? SIZE_UNITS[(match[2] || 'b').toLowerCase()] : undefined;
    if (!match || factor === undefined) throw invalid(`${showValue(value)} is not a size; ${fix}`);
    bytes = Math.floor(Number(match[1]) * factor);
  }
  if (bytes < 0) throw invalid(`${showValue(value)} is negative; a size is 0 or more`);
  if (!Number.isSafeInteger(bytes)) throw invalid(`${showValue(value)} is too large`);
  return bytes;
}

/** The shortest exact spelling parseDuration reads back: 1_200_000 → "20m", 90_000 → "1m30s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}

/** An exact binary-unit spelling when there is one ("10GiB"), else the byte count. */
export function formatSize(bytes: number): string | number {
  for (const [unit, size] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return bytes;
}
