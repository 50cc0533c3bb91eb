/** Header maps as they travel in stream frames: lower-case names, repeated fields as arrays. */
export type WireHeaders = Record<string, string | string[]>;

/**
 * Connection-specific ("hop-by-hop") fields, RFC 9110 §7.6.1, plus the legacy ones proxies drop:
 * they describe one connection and are never forwarded. Fields named in `Connection` are too.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);

/**
 * `IncomingMessage.rawHeaders` as WireHeaders (names lower-cased, repeats kept in order) without
 * hop-by-hop fields and without `drop` (lower-case names): what stripHopByHop makes of them, in one
 * pass over `raw`. The gateway runs this on every proxied request.
 */
export function relayedRawHeaders(raw: readonly string[], drop: ReadonlySet<string>): WireHeaders {
  let named: Set<string> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    if (name.length === 10 && name.toLowerCase() === 'connection') named = addConnectionTokens(named, raw[i + 1] ?? '');
  }
  const out: WireHeaders = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    if (!HOP_BY_HOP.has(name) && !drop.has(name) && named?.has(name) !== true) addValue(out, name, raw[i + 1] ?? '');
  }
  return out;
}

/** Adds one field line: a repeated name becomes an array, in order. */
function addValue(out: WireHeaders, name: string, value: string): void {
  const prev = out[name];
  if (prev === undefined) out[name] = value;
  else if (Array.isArray(prev)) prev.push(value);
  else out[name] = [prev, value];
}

/**
 * The field names a Connection value lists, lower-cased, added to `named` (created when needed).
 * `keep-alive` and `close`, the values nearly every request and response carries, add nothing:
 * keep-alive is dropped as hop-by-hop anyway, and close is a connection option (RFC 9112 §9.6),
 * not a field name. No set, split or copy for them, on both ends of every proxied request.
 */
function addConnectionTokens(named: Set<string> | undefined, value: string): Set<string> | undefined {
  if (value.length === 10 || value.length === 5) {
    const lower = value.toLowerCase();
    if (lower === 'keep-alive' || lower === 'close') return named;
  }
  const out = named ?? new Set<string>();
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase();
    if (t !== '' && t !== 'close') out.add(t);
  }
  return out;
}

/**
 * A copy of `headers` without hop-by-hop fields and without `drop` (lower-case names). Pure.
 * Names are lower-cased; values keep their order.
 */
export function stripHopByHop(headers: Readonly<Record<string, string | string[] | undefined>>, drop: readonly string[] = []): WireHeaders {
  // One pass, no entry arrays: this runs twice per proxied request (gateway and agent).
  let named: Set<string> | undefined;
  for (const name in headers) {
    const value = headers[name];
    if (!Object.hasOwn(headers, name) || value === undefined || name.toLowerCase() !== 'connection') continue;
    for (const v of Array.isArray(value) ? value : [value]) named = addConnectionTokens(named, v);
  }
  const out: WireHeaders = {};
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    const value = headers[name];
    const lower = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(lower) || named?.has(lower) === true || drop.includes(lower)) continue;
    out[lower] = Array.isArray(value) ? [...value] : value;
  }
  return out;
}

/**
 * `headers` itself when stripHopByHop would only copy it (lower-case names, none hop-by-hop, in
 * `drop` or a Connection field), else that copy. For a header map the caller owns and will not
 * change: the agent's request headers, which the gateway already sends clean.
 */
export function relayableHeaders(headers: WireHeaders, drop: readonly string[] = []): WireHeaders {
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    if (HOP_BY_HOP.has(name) || drop.includes(name) || name !== name.toLowerCase()) return stripHopByHop(headers, drop);
  }
  return headers;
}

/** The single value of a header (the first one when repeated). */
export function headerValue(headers: WireHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Appends to a comma-list header (e.g. x-forwarded-for). */
export function appendHeader(headers: WireHeaders, name: string, value: string): void {
  const prev = headers[name];
  headers[name] = prev === undefined ? value : `${Array.isArray(prev) ? prev.join(', ') : prev}, ${value}`;
}
