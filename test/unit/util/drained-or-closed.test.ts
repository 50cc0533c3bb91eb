import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { drainedOrClosed } from '../../../src/util/drained-or-closed.js';

describe('drainedOrClosed (log writers under backpressure)', () => {
  it('leaves no listener behind, however often the reader is slow, and resolves on close too', async () => {
    const stream = new EventEmitter();
    for (let i = 0; i < 50; i++) {
      const waited = drainedOrClosed(stream);
      stream.emit('drain');
      await waited;
    }
    expect(stream.listenerCount('close')).toBe(0);
    expect(stream.listenerCount('drain')).toBe(0);
    const closed = drainedOrClosed(stream);
    stream.emit('close');
    await closed;
    expect(stream.listenerCount('drain')).toBe(0);
  });
});
