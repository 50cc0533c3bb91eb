import type { WireHeaders } from '../../src/tunnel/http-headers.js';

/** `IncomingMessage.rawHeaders` → WireHeaders as they are (names lower-cased, repeats kept in order). */
export function fromRawHeaders(raw: readonly string[]): WireHeaders {
  const out: WireHeaders = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    const value = raw[i + 1] ?? '';
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}
