import { WebSocket } from 'ws';
import { MAX_CONTROL_FRAME_BYTES, MAX_FRAME_BYTES, PROTOCOL_VERSION } from '../../src/tunnel/protocol.js';
import { statusReport } from './fake-agent-core.js';
import type { Prng } from './prng.js';
import { helloFrame } from './raw-agent.js';

/**
 * A hostile second agent for fuzz tests and `npm run bench -- hostile`: it connects as
 * `evil-agent` (its key must be issued for that id) and sends malformed, oversized and
 * out-of-order frames, including claims about `good-agent`'s service `fuzz-svc`.
 */

const MIB = 1024 * 1024;
/** The slug of the good agent's service the hostile frames lie about. */
const SLUG = 'fuzz-svc';

export type Frame = string | Buffer;

/** One malformed, oversized or out-of-order frame for the tunnel, from the seeded PRNG. */
export function hostileFrame(r: Prng, goodServiceId: string): Frame {
  const id = (): number => r.pick([0, -1, 1, r.int(1, 0xffff_ffff), 2 ** 32, 1.5]);
  const pick = r.int(0, 99);
  if (pick < 8) return r.bytes(r.int(1, 300)).toString('latin1');
  if (pick < 14) return r.pick(['', 'not json', '[1,2,3]', '42', 'null', '"hello"', '{', '{"type":', '{"type":7}', '{}']);
  if (pick < 20) return JSON.stringify({ type: r.pick(['bogus', 'welcome', 'services.sync', 'stream.open', r.text(70), '__proto__', 'constructor']), x: r.text(10) });
  if (pick < 30) {
    return JSON.stringify(
      r.pick([
        { type: 'heartbeat', running_count: 'many', gpu_capacity: -1, gpu_memory_free: {} },
        { type: 'hello', agent_id: '', protocol_version: 'two' },
        { type: 'service.status', status: { serviceId: 7, replicas: 'none' } },
        { type: 'status.snapshot', services: 'all' },
        { type: 'stream.window', stream_id: id(), credit: r.pick([0, -5, 2 ** 40, 'lots']) },
        { type: 'stream.reset', stream_id: id() },
        { type: 'stream.response', stream_id: id(), status: r.pick([0, 99, 600, '200']), headers: [] },
        { type: 'credential.resolve', request_id: r.text(100), service_id: '', credential_id: r.text(300) },
        { type: 'error', code: '', message: 5 },
      ]),
    );
  }
  // Out of order: well-formed stream frames for streams that do not exist (ignored), binary data.
  if (pick < 40) return JSON.stringify(r.pick([{ type: 'stream.end', stream_id: r.int(1, 1e6) }, { type: 'stream.window', stream_id: r.int(1, 1e6), credit: 65_536 }, { type: 'stream.reset', stream_id: r.int(1, 1e6), code: 'cancelled' }, { type: 'stream.response', stream_id: r.int(1, 1e6), status: 200, headers: {} }]));
  if (pick < 50) {
    const size = r.pick([0, 1, 3, 4, 5, 64, 16 * 1024]);
    const frame = r.bytes(size);
    if (size >= 4 && r.chance(0.5)) frame.writeUInt32BE(r.chance(0.5) ? 0 : r.int(1, 1e6), 0);
    return frame;
  }
  // Claims about services never given to this agent: the good agent's service, and made-up ones.
  if (pick < 62) return JSON.stringify({ type: 'service.status', status: statusReport(r.chance(0.5) ? goodServiceId : r.text(36), SLUG, { state: r.pick(['failed', 'running', 'stopping']) }) });
  if (pick < 66) return JSON.stringify({ type: 'status.snapshot', services: Array.from({ length: r.int(1, 500) }, () => statusReport(r.text(36), 'ghost')) });
  if (pick < 74) return JSON.stringify({ type: 'credential.resolve', request_id: `r${r.int(1, 1e9)}`, service_id: r.chance(0.5) ? goodServiceId : r.text(36), credential_id: r.text(36) });
  if (pick < 80) return JSON.stringify({ type: 'heartbeat', running_count: r.int(0, 1e6), gpu_capacity: r.int(0, 8), gpu_memory_free: null });
  if (pick < 83) return JSON.stringify(helloFrame('evil-agent', { labels: Array.from({ length: r.int(0, 600) }, () => r.text(8)) }));
  if (pick < 84) {
    // Rare, as each ends its connection at once: oversized text, another agent's id, another version.
    const rare = r.int(0, 9);
    if (rare < 5) return JSON.stringify({ type: 'status.snapshot', services: [], pad: 'x'.repeat(MAX_CONTROL_FRAME_BYTES + r.int(1, MIB)) });
    if (rare < 6) return JSON.stringify(helloFrame('good-agent'));
    if (rare < 7) return JSON.stringify(helloFrame('evil-agent', { protocol_version: PROTOCOL_VERSION + 1 }));
  }
  return JSON.stringify({ type: r.pick(['service.status', 'status.snapshot', 'credential.resolve']) });
}

export interface ConnectionOutcome {
  code: number | undefined;
  sent: number;
  errors: number;
}

/**
 * One hostile connection: (usually) a valid hello, then frames from `frames` until the gateway
 * closes it or `budget` were sent. Sent = handed to the socket while the connection was open.
 */
export async function hostileConnection(url: string, key: string, r: Prng, frames: () => Frame, budget: number, giant: boolean): Promise<ConnectionOutcome> {
  // Zero masks, as the agent uses on loopback: the test's CPU goes to the frames, not masking.
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${key}` }, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES, generateMask: (mask) => void mask.fill(0) });
  let errors = 0;
  let code: number | undefined;
  const closed = new Promise<void>((resolve) => ws.once('close', (c) => ((code = c), resolve())));
  ws.on('error', () => undefined);
  ws.on('message', (data, isBinary) => {
    if (!isBinary && String(data).startsWith('{"type":"error"')) errors += 1;
  });
  await new Promise<void>((resolve) => {
    ws.once('open', () => resolve());
    ws.once('close', () => resolve());
  });
  let sent = 0;
  const send = (frame: Frame): Promise<boolean> =>
    new Promise((resolve) => {
      if (ws.readyState !== WebSocket.OPEN) return resolve(false);
      ws.send(frame, { binary: Buffer.isBuffer(frame) }, (err) => resolve(err === undefined || err === null));
    });
  if (r.chance(0.9) && (await send(JSON.stringify(helloFrame('evil-agent'))))) sent += 1;
  // A frame above 16 MiB, refused by its header alone (1009).
  if (giant && (await send(Buffer.alloc(MAX_FRAME_BYTES + 1)))) sent += 1;
  while (sent < budget && ws.readyState === WebSocket.OPEN) {
    if (await send(frames())) sent += 1;
  }
  ws.close();
  const force = setTimeout(() => ws.terminate(), 3_000);
  await closed;
  clearTimeout(force);
  return { code, sent, errors };
}
