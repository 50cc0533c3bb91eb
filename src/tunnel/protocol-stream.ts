import { z } from 'zod';

/**
 * Proxied HTTP streams carried inside the tunnel (the multiplexer is stream-mux.ts).
 *
 * Stream lifecycle (one stream = one proxied HTTP exchange or WebSocket upgrade):
 *
 *   gateway                                   agent
 *   stream.open {stream_id, method, path…} ──▶
 *   [binary: id | request body chunk]  …   ──▶           (each side sends data only within the
 *                                           ◀── stream.window {credit}   credit the peer granted)
 *   stream.end {stream_id}                 ──▶           (request half closed)
 *                                           ◀── stream.response {status, headers}
 *                                           ◀── [binary: id | response body chunk] …
 *                                           ◀── stream.end {stream_id}
 *   (version 3: the agent may send the head, its first body chunk and the end as one binary
 *    response frame instead, see encodeResponseFrame)
 *   either side, any time: stream.reset {stream_id, code} aborts both directions.
 *
 * Stream ids are chosen by the gateway (the opener), unique per connection, 1 … 2^32-1.
 * Every stream starts with STREAM_INITIAL_WINDOW bytes of credit in each direction.
 */
export const STREAM_INITIAL_WINDOW = 256 * 1024;
/**
 * Receive credit a side keeps open per stream once its sender delivered half the initial window
 * within 50 ms, as far as the connection's STREAM_RECEIVE_BUDGET allows (the receiver's choice:
 * senders only follow the credit they are granted, so it needs no negotiation). 4 MiB, as Go's
 * HTTP/2 transport grants per stream (OpenSSH: 2 MiB per channel): against 1 MiB a 512 MiB
 * download through the tunnel ran ×1.18–1.36 faster in three paired A/B runs, 2 MiB made no
 * difference (docs/proxy-performance.md, Bulk). It is also what a side may buffer for a stream
 * whose reader stalls.
 */
export const STREAM_DEFAULT_WINDOW = 4 * 1024 * 1024;
/**
 * Receive credit a side keeps open above the initial windows across all streams of one connection
 * (the receiver's choice too): 16 streams at the full window, the others stay at the initial one.
 * What bounds a side's buffering for readers that stall: every stream's initial window plus this,
 * 2.5 GiB + 64 MiB at 10,000 streams, where 4 MiB per stream alone allowed 40 GiB. (HTTP/2 has a
 * connection window for the same reason.)
 */
export const STREAM_RECEIVE_BUDGET = 64 * 1024 * 1024;
/**
 * Largest payload of one binary data frame a sender produces (fair scheduling across streams).
 * 16 KiB: several frames fit one 64 KiB socket read, so the receiving ws hands most of them over
 * as slices of that read instead of joining a frame that spans two reads into a fresh buffer
 * (which, at 64 KiB frames, was every frame: a copy and an external allocation per frame, and in
 * some runs a mark-compact every ~15 MiB). Measured in docs/proxy-performance.md.
 */
export const STREAM_MAX_CHUNK = 16 * 1024;
/** Bytes of the stream id prefix on a binary data frame (unsigned 32-bit big-endian). */
export const STREAM_ID_BYTES = 4;
export const MAX_STREAM_ID = 0xffff_ffff;

const streamId = z.number().int().min(1).max(MAX_STREAM_ID);
const headerValue = z.union([z.string(), z.array(z.string())]);
const headers = z.record(z.string(), headerValue);

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** gateway → agent: a new proxied request for a service. `path` includes the query. */
export const streamOpenFrame = z.object({
  type: z.literal('stream.open'),
  stream_id: streamId,
  service_id: z.string().min(1),
  method: z.enum(HTTP_METHODS),
  path: z.string().startsWith('/'),
  headers,
  /**
   * Whether a request body follows (data frames, then stream.end). `false`: the request half is
   * closed from the start (no data, no stream.end follow). Absent: a body follows exactly when
   * `content-length` is present and not 0. `true` without `content-length`: relayed chunked.
   */
  has_body: z.boolean().optional(),
  /** True for a WebSocket upgrade: after stream.response 101 the data frames carry raw bytes. */
  upgrade: z.boolean().optional(),
  /**
   * What the stream is for: absent or `proxy` = an HTTP exchange with the service; `logs` = the
   * agent answers itself with the service's replica logs (NDJSON; docs/protocol.md).
   */
  purpose: z.enum(['proxy', 'logs']).optional(),
});

/** agent → gateway: the upstream's response head. */
export const streamResponseFrame = z.object({
  type: z.literal('stream.response'),
  stream_id: streamId,
  status: z.number().int().min(100).max(599),
  headers,
});

/** either direction: the sender may send `credit` more bytes of data on the stream. */
export const streamWindowFrame = z.object({
  type: z.literal('stream.window'),
  stream_id: streamId,
  credit: z.number().int().min(1).max(MAX_STREAM_ID),
});

/** either direction: the sender will send no more data on the stream (half close). */
export const streamEndFrame = z.object({
  type: z.literal('stream.end'),
  stream_id: streamId,
});

/** either direction: abort the stream; no further frames for it are valid. */
export const streamResetFrame = z.object({
  type: z.literal('stream.reset'),
  stream_id: streamId,
  code: z.string().min(1),
  message: z.string().optional(),
});

const requestId = z.string().min(1).max(64);

/**
 * agent → gateway: asks for the value of the credential an external service references. The
 * gateway answers only for `external_auth_credential_id` of `service_id`, and only to an agent the
 * service is placed on.
 */
export const credentialResolveFrame = z.object({
  type: z.literal('credential.resolve'),
  request_id: requestId,
  service_id: z.string().min(1),
  credential_id: z.string().min(1).max(256),
});

/**
 * gateway → agent: the answer to one `credential.resolve`: either `value` (the full Authorization
 * header value, e.g. `Bearer sk-…`, cacheable for `ttl_ms`) or `error`. Never logged.
 */
export const credentialResolvedFrame = z
  .object({
    type: z.literal('credential.resolved'),
    request_id: requestId,
    value: z.string().min(1).max(16 * 1024).optional(),
    ttl_ms: z.number().int().min(0).max(86_400_000).optional(),
    error: z.object({ code: z.string().min(1), message: z.string() }).optional(),
  })
  .refine((f) => (f.value === undefined) !== (f.error === undefined), { message: 'exactly one of value and error must be set', path: ['value'] });

export type CredentialResolveFrame = z.infer<typeof credentialResolveFrame>;
export type CredentialResolvedFrame = z.infer<typeof credentialResolvedFrame>;
export type StreamOpenFrame = z.infer<typeof streamOpenFrame>;
export type StreamResponseFrame = z.infer<typeof streamResponseFrame>;
export type StreamWindowFrame = z.infer<typeof streamWindowFrame>;
export type StreamEndFrame = z.infer<typeof streamEndFrame>;
export type StreamResetFrame = z.infer<typeof streamResetFrame>;

export interface DataFrame {
  streamId: number;
  payload: Buffer;
}

/**
 * A binary data frame: [stream id, u32 BE][payload]. Written into `into` (at least
 * STREAM_ID_BYTES + payload bytes long) when given, so senders can reuse frame buffers.
 */
export function encodeDataFrame(streamIdValue: number, payload: Uint8Array, into?: Buffer): Buffer {
  const size = STREAM_ID_BYTES + payload.byteLength;
  const out = into === undefined ? Buffer.allocUnsafe(size) : into.subarray(0, size);
  out.writeUInt32BE(streamIdValue, 0);
  out.set(payload, STREAM_ID_BYTES);
  return out;
}

/** Decodes a binary data frame; undefined when it is too short or names stream 0 (a response frame). */
export function decodeDataFrame(frame: Buffer): DataFrame | undefined {
  if (frame.byteLength < STREAM_ID_BYTES) return undefined;
  const id = frame.readUInt32BE(0);
  if (id === 0) return undefined;
  return { streamId: id, payload: frame.subarray(STREAM_ID_BYTES) };
}

/** Bytes before the head JSON in a response frame: escape (u32 0), stream id (u32), flags (u8), head length (u32). */
export const RESPONSE_FRAME_PREFIX = 13;
/** Response frame flag: the stream's end (the agent's half) follows the body. */
export const RESPONSE_FLAG_END = 0x01;

/** The head a response frame carries (a stream.response without type and stream_id). */
export interface ResponseHead {
  status: number;
  headers: Record<string, string | string[]>;
}

export interface ResponseFrame {
  streamId: number;
  end: boolean;
  /** The head JSON as sent; the receiver checks it as a stream.response. */
  head: unknown;
  body: Buffer;
}

/**
 * A response frame (protocol version 3, agent → gateway): a stream's response head, its first body
 * chunk and optionally its end in one binary frame, so a small response is one WebSocket message
 * (and one the tunnel either delivers whole or not at all):
 *
 *   [0: u32][stream id: u32][flags: u8, bit 0 = end][head length: u32][head JSON][body bytes]
 *
 * Stream id 0 in the first four bytes marks it: data frames never name stream 0.
 */
export function encodeResponseFrame(streamIdValue: number, head: ResponseHead, body: Uint8Array | undefined, end: boolean): Buffer {
  // The head's JSON is written straight into the frame: no intermediate Buffer per response.
  const json = JSON.stringify({ status: head.status, headers: head.headers });
  const headBytes = Buffer.byteLength(json);
  const bodyBytes = body?.byteLength ?? 0;
  const out = Buffer.allocUnsafe(RESPONSE_FRAME_PREFIX + headBytes + bodyBytes);
  out.writeUInt32BE(0, 0);
  out.writeUInt32BE(streamIdValue, 4);
  out.writeUInt8(end ? RESPONSE_FLAG_END : 0, 8);
  out.writeUInt32BE(headBytes, 9);
  out.write(json, RESPONSE_FRAME_PREFIX);
  if (body !== undefined) out.set(body, RESPONSE_FRAME_PREFIX + headBytes);
  return out;
}

/**
 * Decodes a response frame (first four bytes 0). Returns a problem description when the frame is
 * malformed: too short, stream 0, unknown flags, a head length past the frame or above
 * `maxHeadBytes`, or a head that is not JSON. The head's shape is the caller's to check.
 */
export function decodeResponseFrame(frame: Buffer, maxHeadBytes: number): ResponseFrame | string {
  if (frame.byteLength < RESPONSE_FRAME_PREFIX) return `response frame of ${frame.byteLength} bytes is shorter than its ${RESPONSE_FRAME_PREFIX}-byte prefix`;
  const id = frame.readUInt32BE(4);
  if (id === 0) return 'response frame for stream 0';
  const flags = frame.readUInt8(8);
  if ((flags & ~RESPONSE_FLAG_END) !== 0) return `response frame for stream ${id} has unknown flags 0x${flags.toString(16)}`;
  const headBytes = frame.readUInt32BE(9);
  if (headBytes > maxHeadBytes) return `response frame for stream ${id}: head of ${headBytes} bytes exceeds ${maxHeadBytes}`;
  if (RESPONSE_FRAME_PREFIX + headBytes > frame.byteLength) return `response frame for stream ${id}: head length ${headBytes} runs past the frame's ${frame.byteLength} bytes`;
  let head: unknown;
  try {
    head = JSON.parse(frame.toString('utf8', RESPONSE_FRAME_PREFIX, RESPONSE_FRAME_PREFIX + headBytes));
  } catch {
    return `response frame for stream ${id}: head is not JSON`;
  }
  return { streamId: id, end: (flags & RESPONSE_FLAG_END) !== 0, head, body: frame.subarray(RESPONSE_FRAME_PREFIX + headBytes) };
}
