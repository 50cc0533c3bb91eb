import { describe, expect, it } from 'vitest';
import { WsTransport } from '../../../src/tunnel/ws-transport.js';

/** A socket that records cork depth, and a ws that records what it sent at which depth. */
function fakes(readyState = 1) {
  const socket = {
    depth: 0,
    corks: 0,
    uncorks: 0,
    cork() {
      this.depth++;
      this.corks++;
    },
    uncork() {
      this.depth--;
      this.uncorks++;
    },
  };
  const sent: Array<{ data: string | Buffer; binary: boolean; corked: boolean }> = [];
  const ws = {
    readyState,
    send(data: string | Buffer, options: { binary: boolean }, cb?: () => void) {
      sent.push({ data, binary: options.binary, corked: socket.depth > 0 });
      if (cb) setImmediate(cb);
    },
  };
  return { socket, ws, sent };
}

const nextTurn = () => new Promise((r) => setImmediate(r));

describe('WsTransport write batching', () => {
  it('holds every frame of one event-loop turn behind one cork and releases them together', async () => {
    const { socket, ws, sent } = fakes();
    const t = new WsTransport(ws, socket);
    t.sendText('{"type":"stream.response"}');
    t.sendBinary(Buffer.from('body'), () => undefined);
    t.sendText('{"type":"stream.end"}');
    expect(sent.map((s) => s.corked)).toEqual([true, true, true]);
    expect(socket).toMatchObject({ corks: 1, uncorks: 0 });
    await nextTurn();
    expect(socket).toMatchObject({ corks: 1, uncorks: 1, depth: 0 });
  });

  it('gives each turn its own batch', async () => {
    const { socket, ws } = fakes();
    const t = new WsTransport(ws, socket);
    t.sendText('a');
    await nextTurn();
    t.sendText('b');
    t.sendText('c');
    await nextTurn();
    expect(socket).toMatchObject({ corks: 2, uncorks: 2, depth: 0 });
  });

  it('drops frames once the socket is not open, and still reports binary frames as written', () => {
    const { socket, ws, sent } = fakes(2);
    const t = new WsTransport(ws, socket);
    let written = 0;
    t.sendText('late');
    t.sendBinary(Buffer.from('late'), () => written++);
    expect(t.open).toBe(false);
    expect(sent).toEqual([]);
    expect(written).toBe(1);
    expect(socket.corks).toBe(0);
  });
});
