import type { BodilessHost } from '../src/tunnel/bodiless-exchange.js';
import { STREAM_DEFAULT_WINDOW, type ResponseHead } from '../src/tunnel/protocol-stream.js';
import { TunnelStream, type StreamHost } from '../src/tunnel/tunnel-stream.js';

/**
 * A host for streams and bodiless exchanges without a mux or a peer (bench/min-tunnel.ts,
 * bench/held-heap.ts): a sender's turns run at once when it is scheduled, a response frame (and a
 * whole answer) goes to `sink`, and every other frame nowhere. Credit is never granted or asked for.
 */
export function directHost(sink: (head: ResponseHead, body: Buffer | undefined) => void = () => undefined): StreamHost & BodilessHost {
  const host: StreamHost & BodilessHost = {
    chunkBytes: 16 * 1024,
    windowBytes: STREAM_DEFAULT_WINDOW,
    combinedResponses: true,
    reserveWindow: (wanted) => wanted,
    releaseWindow: () => undefined,
    parked: () => undefined,
    sendControl: () => undefined,
    retire: () => undefined,
    sendWholeNow: (_id, head, body) => {
      sink(head, body);
      return true;
    },
    forgetExchange: () => undefined,
    streamFor: (exchange) => new TunnelStream(exchange.id, host, 'remote'),
    schedule(sender) {
      while (sender.sendTurn({ control: () => undefined, data: () => undefined, response: sink }) === 'more');
    },
  };
  return host;
}
