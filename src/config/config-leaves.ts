import { z } from 'zod';
import { errorMessage } from '../errors.js';
import { formatDuration, invalid, parseDuration, parseSize, showValue } from './config-units.js';

// ---------------------------------------------------------------------------------------------
// Leaves. Each takes any input (undefined = not set) and either returns the parsed value or adds
// one issue whose message is "<value's problem>; <fix>".

export function leaf<T>(parse: (input: unknown) => T) {
  return z
    .unknown()
    .transform((input, ctx): T => {
      try {
        return parse(input);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: errorMessage(err) });
        return z.NEVER;
      }
    })
    .optional();
}

export function asString(input: unknown, what: string): string {
  if (typeof input !== 'string') throw invalid(`expected ${what}, got ${showValue(input)}`);
  return input.trim();
}

/** A duration of at least `min`; with `zeroIsOff`, exactly 0 is accepted as well (turns the feature off). */
export const duration = (min = 1, zeroIsOff = false) =>
  leaf((input) => {
    if (typeof input !== 'string' && typeof input !== 'number') throw invalid(`expected a duration such as "30s", got ${showValue(input)}`);
    const ms = parseDuration(input);
    if (ms < min && !(zeroIsOff && ms === 0)) {
      const bare = typeof input === 'number' || /^\s*\d+\s*$/.test(input) ? ` (a bare number is milliseconds; write "${String(input).trim()}s" for seconds)` : '';
      throw invalid(`${showValue(input)} is too short; use at least ${formatDuration(min)}${zeroIsOff ? ' (or 0 for never)' : ''}${bare}`);
    }
    return ms;
  });

export const size = () =>
  leaf((input) => {
    if (typeof input !== 'string' && typeof input !== 'number') throw invalid(`expected a size such as "10GiB", got ${showValue(input)}`);
    const bytes = parseSize(input);
    if (bytes < 1) throw invalid(`${showValue(input)} is zero; use a positive size such as "10GiB"`);
    return bytes;
  });

export const int = (min: number, max: number) =>
  leaf((input) => {
    const n = typeof input === 'string' && /^\s*-?\d+\s*$/.test(input) ? Number(input) : input;
    if (typeof n !== 'number' || !Number.isInteger(n)) throw invalid(`${showValue(input)} is not an integer; write a whole number from ${min} to ${max}`);
    if (n < min || n > max) throw invalid(`${n} is out of range; use a whole number from ${min} to ${max}`);
    return n;
  });

export const bool = () =>
  leaf((input) => {
    if (typeof input === 'boolean') return input;
    const text = typeof input === 'string' ? input.trim().toLowerCase() : '';
    if (['true', 'yes', 'on', '1'].includes(text)) return true;
    if (['false', 'no', 'off', '0'].includes(text)) return false;
    throw invalid(`${showValue(input)} is not a boolean; write true or false`);
  });

export const oneOf = <const T extends string>(values: readonly T[]) =>
  leaf((input): T => {
    const text = typeof input === 'string' ? input.trim() : input;
    const found = values.find((v) => v === text);
    if (found === undefined) throw invalid(`${showValue(input)} is not allowed; use one of ${values.join(', ')}`);
    return found;
  });

/** A path string; relative paths and "~/" are resolved by the loader against the layer's base. */
export const filePath = () =>
  leaf((input) => {
    const text = asString(input, 'a path');
    if (text === '') throw invalid('the path is empty; write a path or remove the key');
    if (text.includes('\0')) throw invalid('the path contains a NUL byte');
    return text;
  });

/** A list given as a YAML list, or as one comma-separated string (env vars, flags). */
export function listItems(input: unknown, what: string): string[] {
  const items = typeof input === 'string' ? input.split(',') : input;
  if (!Array.isArray(items)) throw invalid(`expected a list of ${what}, got ${showValue(input)}`);
  return items.map((item) => asString(item, what)).filter((item) => item !== '');
}
