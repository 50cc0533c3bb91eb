import { encodeFrame, parseGatewayFrame } from '../src/tunnel/protocol.js';
import { HTTP_METHODS, decodeResponseFrame, encodeResponseFrame, type ResponseHead, type StreamOpenFrame } from '../src/tunnel/protocol-stream.js';
import { checkResponseHead } from '../src/tunnel/stream-frame-check.js';
import type { WireHeaders } from '../src/tunnel/http-headers.js';

/**
 * Would a binary stream.open and response head cost less than the JSON the tunnel sends now?
 * `node dist-bench/bench/frame-codec.js [rounds]` (after `npm run bench -- none`) times, per frame,
 * both halves of each as the tunnel runs them — the gateway's encodeFrame and the agent's
 * parseGatewayFrame (the text as ws hands it over: a Buffer read as UTF-8); the agent's
 * encodeResponseFrame and the gateway's decodeResponseFrame + checkResponseHead — against a
 * length-prefixed binary layout written and read with Buffer's methods (the candidate in
 * docs/proxy-performance.md, Next steps). Rounds alternate; it prints the range over rounds and
 * binary / JSON per round. The binary reader checks nothing: a layout gets the types right by
 * construction, so the comparison favours it.
 */
const rounds = Number(process.argv[2] ?? 7);
const PER_ROUND = 200_000;

/** A small GET as the gateway relays it: a client's fields plus the four forwarding fields. */
const openFrame: StreamOpenFrame = {
  type: 'stream.open',
  stream_id: 1,
  service_id: '5b0e7c1e-7d1a-4c3e-9a51-0c2d7e0f6a11',
  method: 'GET',
  path: '/v1/models?limit=20',
  headers: {
    'user-agent': 'python-requests/2.32.3',
    accept: 'application/json',
    'accept-encoding': 'gzip, deflate',
    'x-request-id': '8f14e45f-ceea-467f-a9b0-3c1e2f4d5a6b',
    'x-forwarded-for': '10.1.2.3',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'api.example.com',
    forwarded: 'for=10.1.2.3;host=api.example.com;proto=https',
  },
  has_body: false,
};

/** A small JSON answer's head as the agent relays it. */
const responseHead: ResponseHead = {
  status: 200,
  headers: { 'content-type': 'application/json', 'content-length': '87', date: 'Mon, 07 Dec 2026 13:20:00 GMT', etag: 'W/"57-1a2b3c"', 'x-request-id': '8f14e45f-ceea-467f-a9b0-3c1e2f4d5a6b' },
};
const responseBody = Buffer.alloc(87, 0x61);

/** Pairs of a header map in wire order (a repeated field as several pairs). */
function headerPairsBytes(headers: WireHeaders): number {
  let n = 2;
  for (const name in headers) {
    const value = headers[name] as string | string[];
    for (const v of Array.isArray(value) ? value : [value]) n += 4 + Buffer.byteLength(name, 'latin1') + Buffer.byteLength(v, 'latin1');
  }
  return n;
}

function writeHeaderPairs(out: Buffer, at: number, headers: WireHeaders): number {
  let o = at + 2;
  let count = 0;
  for (const name in headers) {
    const value = headers[name] as string | string[];
    for (const v of Array.isArray(value) ? value : [value]) {
      const nameBytes = out.write(name, o + 2, 'latin1');
      out.writeUInt16BE(nameBytes, o);
      o += 2 + nameBytes;
      const valueBytes = out.write(v, o + 2, 'latin1');
      out.writeUInt16BE(valueBytes, o);
      o += 2 + valueBytes;
      count++;
    }
  }
  out.writeUInt16BE(count, at);
  return o;
}

/** Reads a binary frame front to back: length-prefixed strings and the header pairs. */
class FrameReader {
  constructor(
    private readonly frame: Buffer,
    public at: number,
  ) {}

  /** A string prefixed by its byte length (u16, or u32 with `wide`). */
  string(encoding: 'latin1' | 'utf8', wide = false): string {
    const bytes = wide ? this.frame.readUInt32BE(this.at) : this.frame.readUInt16BE(this.at);
    const start = this.at + (wide ? 4 : 2);
    this.at = start + bytes;
    return this.frame.toString(encoding, start, this.at);
  }

  headerPairs(): WireHeaders {
    const headers: WireHeaders = {};
    const count = this.frame.readUInt16BE(this.at);
    this.at += 2;
    for (let i = 0; i < count; i++) {
      const name = this.string('latin1');
      const value = this.string('latin1');
      const prev = headers[name];
      headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    }
    return headers;
  }
}

/** [0: u32][kind: u8][stream id: u32][flags: u8][method: u8][service id: u16 + bytes][path: u32 + UTF-8][header pairs]. */
function encodeBinaryOpen(f: StreamOpenFrame): Buffer {
  const size = 4 + 1 + 4 + 1 + 1 + 2 + Buffer.byteLength(f.service_id, 'latin1') + 4 + Buffer.byteLength(f.path) + headerPairsBytes(f.headers);
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(0, 0);
  out[4] = 1;
  out.writeUInt32BE(f.stream_id, 5);
  out[9] = (f.has_body === undefined ? 0 : f.has_body ? 3 : 1) | (f.upgrade === true ? 4 : 0) | (f.purpose === 'logs' ? 8 : 0);
  out[10] = HTTP_METHODS.indexOf(f.method);
  let o = 11;
  const serviceBytes = out.write(f.service_id, o + 2, 'latin1');
  out.writeUInt16BE(serviceBytes, o);
  o += 2 + serviceBytes;
  const pathBytes = out.write(f.path, o + 4, 'utf8');
  out.writeUInt32BE(pathBytes, o);
  o += 4 + pathBytes;
  return out.subarray(0, writeHeaderPairs(out, o, f.headers));
}

function decodeBinaryOpen(frame: Buffer): StreamOpenFrame {
  const flags = frame[9] as number;
  const reader = new FrameReader(frame, 11);
  const service = reader.string('latin1');
  const path = reader.string('utf8', true);
  const headers = reader.headerPairs();
  const out: StreamOpenFrame = { type: 'stream.open', stream_id: frame.readUInt32BE(5), service_id: service, method: HTTP_METHODS[frame[10] as number] ?? 'GET', path, headers };
  if ((flags & 1) !== 0) out.has_body = (flags & 2) !== 0;
  if ((flags & 4) !== 0) out.upgrade = true;
  if ((flags & 8) !== 0) out.purpose = 'logs';
  return out;
}

/** The response frame with a binary head: [0: u32][stream id: u32][flags: u8][status: u16][header pairs][body]. */
function encodeBinaryResponse(id: number, head: ResponseHead, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + 4 + 1 + 2 + headerPairsBytes(head.headers) + body.byteLength);
  out.writeUInt32BE(0, 0);
  out.writeUInt32BE(id, 4);
  out[8] = 1;
  out.writeUInt16BE(head.status, 9);
  const o = writeHeaderPairs(out, 11, head.headers);
  out.set(body, o);
  return out;
}

function decodeBinaryResponse(frame: Buffer): { status: number; headers: WireHeaders; body: Buffer } {
  const reader = new FrameReader(frame, 11);
  const headers = reader.headerPairs();
  return { status: frame.readUInt16BE(9), headers, body: frame.subarray(reader.at) };
}

const jsonOpenBytes = Buffer.from(encodeFrame(openFrame));
const binaryOpenBytes = encodeBinaryOpen(openFrame);
const jsonResponseBytes = encodeResponseFrame(1, responseHead, responseBody, true);
const binaryResponseBytes = encodeBinaryResponse(1, responseHead, responseBody);

// Each side must read back what the other wrote, or the timing compares different work.
const parsed = parseGatewayFrame(jsonOpenBytes.toString('utf8'));
if (!parsed.ok || JSON.stringify(decodeBinaryOpen(binaryOpenBytes)) !== JSON.stringify(parsed.frame)) throw new Error('binary stream.open does not decode to the JSON one');
const jsonHead = decodeResponseFrame(jsonResponseBytes, 1 << 20);
if (typeof jsonHead === 'string') throw new Error(jsonHead);
if (JSON.stringify(decodeBinaryResponse(binaryResponseBytes).headers) !== JSON.stringify(checkResponseHead(1, jsonHead.head)?.headers)) throw new Error('binary head does not decode to the JSON one');

let sink = 0;
const cases: Record<string, () => void> = {
  'stream.open encode, JSON': () => (sink += Buffer.byteLength(encodeFrame({ ...openFrame, stream_id: sink & 0xffff || 1 }))),
  'stream.open encode, binary': () => (sink += encodeBinaryOpen({ ...openFrame, stream_id: sink & 0xffff || 1 }).byteLength),
  'stream.open decode, JSON': () => (sink += parseGatewayFrame(jsonOpenBytes.toString('utf8')).ok ? 1 : 0),
  'stream.open decode, binary': () => (sink += decodeBinaryOpen(binaryOpenBytes).path.length),
  'response head encode, JSON': () => (sink += encodeResponseFrame(1, responseHead, responseBody, true).byteLength),
  'response head encode, binary': () => (sink += encodeBinaryResponse(1, responseHead, responseBody).byteLength),
  'response head decode, JSON': () => {
    const f = decodeResponseFrame(jsonResponseBytes, 1 << 20);
    sink += typeof f !== 'string' && checkResponseHead(f.streamId, f.head) !== undefined ? 1 : 0;
  },
  'response head decode, binary': () => (sink += decodeBinaryResponse(binaryResponseBytes).status),
};

const times = new Map<string, number[]>(Object.keys(cases).map((k) => [k, []]));
for (let r = 0; r < rounds; r++) {
  for (const [name, run] of Object.entries(cases)) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < PER_ROUND; i++) run();
    times.get(name)?.push(Number(process.hrtime.bigint() - t0) / 1000 / PER_ROUND);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)} µs (median ${median(xs).toFixed(2)})`;
process.stdout.write(`frame bytes: stream.open JSON ${jsonOpenBytes.byteLength}, binary ${binaryOpenBytes.byteLength}; response frame JSON ${jsonResponseBytes.byteLength}, binary ${binaryResponseBytes.byteLength}\n`);
process.stdout.write(`per frame, rounds 2–${rounds} (the first warms up):\n`);
for (const [name, xs] of times) process.stdout.write(`  ${name}: ${range(xs.slice(1))}\n`);
for (const what of ['stream.open encode', 'stream.open decode', 'response head encode', 'response head decode']) {
  const json = times.get(`${what}, JSON`)?.slice(1) ?? [];
  const binary = times.get(`${what}, binary`)?.slice(1) ?? [];
  const ratios = binary.map((b, i) => b / (json[i] ?? Number.NaN));
  process.stdout.write(`  ${what}: binary / JSON ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)} (median ${median(ratios).toFixed(2)})\n`);
}
if (sink === -1) process.stdout.write('\n');
