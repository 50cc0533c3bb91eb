/** The part of a writable stream (a ServerResponse, a TunnelStream) the wait needs. */
export interface DrainingWritable {
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/**
 * Resolves on the stream's next 'drain' or its 'close', whichever comes first, and leaves no
 * listener behind either way: a writer that waits after every refused write (a slow log follower)
 * must not gather one listener per wait, as `Promise.race` over two `events.once` does.
 */
export function drainedOrClosed(stream: DrainingWritable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}
