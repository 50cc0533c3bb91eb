import { WebSocket, type RawData } from 'ws';
import { PROTOCOL_VERSION } from '../../src/tunnel/protocol.js';
import { waitFor } from './wait-for.js';

/** A frame the gateway sent, parsed (text frames only). */
export type SeenFrame = { type: string } & Record<string, unknown>;

/**
 * A hand-driven agent connection for tests that speak the tunnel protocol frame by frame
 * (impostors, hostile peers): it records every text frame the gateway sends and how it closed.
 */
export interface RawAgent {
  ws: WebSocket;
  frames: SeenFrame[];
  /** Resolves with the close code and reason once the connection is closed. */
  closed: Promise<{ code: number; reason: string }>;
  send(frame: unknown): void;
  hello(agentId: string, over?: Record<string, unknown>): void;
  /** The first frame of `type` (and matching `where`), waiting for it. */
  next(type: string, where?: (f: SeenFrame) => boolean, timeoutMs?: number): Promise<SeenFrame>;
  close(): void;
}

export function helloFrame(agentId: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'hello', agent_id: agentId, agent_version: 'test', protocol_version: PROTOCOL_VERSION, labels: [], platform_arch: 'linux/amd64', gpu_devices: [], service_ids: [], ...over };
}

/** Opens a WebSocket to the agent endpoint with `key`; resolves once open (rejects on refusal). */
export async function connectRawAgent(url: string, key: string): Promise<RawAgent> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${key}` }, perMessageDeflate: false });
  const frames: SeenFrame[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('message', (data: RawData, isBinary) => {
    if (isBinary) return;
    try {
      frames.push(JSON.parse(String(data)) as SeenFrame);
    } catch {
      // the gateway sends only JSON text frames
    }
  });
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with HTTP ${res.statusCode ?? '?'}`)));
    ws.once('error', reject);
  });
  const send = (frame: unknown): void => {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (Buffer.isBuffer(frame)) ws.send(frame, { binary: true });
    else ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  };
  return {
    ws,
    frames,
    closed,
    send,
    hello: (agentId, over) => send(helloFrame(agentId, over)),
    next: (type, where = () => true, timeoutMs = 5000) => waitFor(`a ${type} frame from the gateway`, () => frames.find((f) => f.type === type && where(f)), timeoutMs),
    close: () => ws.close(),
  };
}
