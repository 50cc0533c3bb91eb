import { HTTP_METHODS, MAX_STREAM_ID, type StreamResponseFrame } from './protocol-stream.js';

/**
 * The stream frames' schemas (protocol-stream.ts) checked by hand: these frames come several per
 * proxied request, and a zod parse of each was ~2–3% of the agent's and the gateway's CPU under
 * small-request load (docs/proxy-performance.md). Each function accepts exactly what its zod
 * schema accepts and returns the same output (known keys only); it returns undefined for anything
 * else, and the caller then runs the zod schema for its error message. A table test holds the two
 * in agreement (test/unit/tunnel/stream-frame-check.test.ts). Where zod copies a headers record,
 * these keep the one they checked: the frame was parsed from its JSON for this check alone, so
 * nothing else holds it (a copy per frame was one more object of a dozen keys per request).
 */
type Raw = Record<string, unknown>;
type Check = (raw: Raw) => Raw | undefined;

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_STREAM_ID;
const isString = (v: unknown): v is string => typeof v === 'string';
const methods: ReadonlySet<unknown> = new Set(HTTP_METHODS);

/** Whether `v` is what z.record(z.string(), z.union([z.string(), z.array(z.string())])) accepts. */
function validHeaders(v: unknown): v is Record<string, string | string[]> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.hasOwn(v, '__proto__')) return false;
  for (const name in v) {
    if (!Object.hasOwn(v, name)) continue;
    const value = (v as Raw)[name];
    if (typeof value !== 'string' && !(Array.isArray(value) && value.every(isString))) return false;
  }
  return true;
}

const optionalBoolean = (v: unknown): boolean => v === undefined || typeof v === 'boolean';

const checks: Record<string, Check> = {
  'stream.window': (raw) => (isId(raw['stream_id']) && isId(raw['credit']) ? { type: 'stream.window', stream_id: raw['stream_id'], credit: raw['credit'] } : undefined),
  'stream.end': (raw) => (isId(raw['stream_id']) ? { type: 'stream.end', stream_id: raw['stream_id'] } : undefined),
  'stream.reset': (raw) => {
    const { stream_id: id, code, message } = raw;
    if (!isId(id) || !isString(code) || code.length < 1 || !(message === undefined || isString(message))) return undefined;
    return message === undefined ? { type: 'stream.reset', stream_id: id, code } : { type: 'stream.reset', stream_id: id, code, message };
  },
  'stream.response': (raw) => checkResponseHead(raw['stream_id'], raw),
  'stream.open': (raw) => {
    const { stream_id: id, service_id: service, method, path, has_body: hasBody, upgrade, purpose } = raw;
    const h = raw['headers'];
    if (!isId(id) || !isString(service) || service.length < 1 || !methods.has(method) || !isString(path) || !path.startsWith('/') || !validHeaders(h)) return undefined;
    if (!optionalBoolean(hasBody) || !optionalBoolean(upgrade) || !(purpose === undefined || purpose === 'proxy' || purpose === 'logs')) return undefined;
    const out: Raw = { type: 'stream.open', stream_id: id, service_id: service, method, path, headers: h };
    if (hasBody !== undefined) out['has_body'] = hasBody;
    if (upgrade !== undefined) out['upgrade'] = upgrade;
    if (purpose !== undefined) out['purpose'] = purpose;
    return out;
  },
};

/** The checked frame when `raw` is a valid stream frame of `type`; undefined otherwise (or for other types). */
export function checkStreamFrame(type: string, raw: Raw): Raw | undefined {
  return Object.hasOwn(checks, type) ? checks[type]?.(raw) : undefined;
}

/**
 * A response head (a stream.response frame, or the parsed head JSON of a response frame, which
 * carries its stream id outside the JSON) as a checked stream.response for `streamId`, or
 * undefined when it is not a valid one (the caller runs the zod schema for the message).
 */
export function checkResponseHead(streamId: unknown, head: unknown): StreamResponseFrame | undefined {
  if (typeof head !== 'object' || head === null || Array.isArray(head)) return undefined;
  const { status, headers: h } = head as Raw;
  if (!isId(streamId) || typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599 || !validHeaders(h)) return undefined;
  return { type: 'stream.response', stream_id: streamId, status, headers: h };
}
