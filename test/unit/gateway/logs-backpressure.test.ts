import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { ServerResponse } from 'node:http';
import { drainedOrClosed } from '../../../src/gateway/routes-logs.js';

describe('follow-mode logs under backpressure', () => {
  it('waiting for drain leaves no close listener behind, however often the client is slow', async () => {
    const res = new EventEmitter() as EventEmitter & Pick<ServerResponse, 'once' | 'off'>;
    for (let i = 0; i < 50; i++) {
      const waited = drainedOrClosed(res);
      res.emit('drain');
      await waited;
    }
    expect(res.listenerCount('close')).toBe(0);
    expect(res.listenerCount('drain')).toBe(0);
    const closed = drainedOrClosed(res);
    res.emit('close');
    await closed;
    expect(res.listenerCount('drain')).toBe(0);
  });
});
