import type { ReadyEndpoint } from '../domain/status-types.js';

/**
 * Least-outstanding-requests choice among ready replicas; ties rotate, so an idle service spreads
 * requests round robin. Counts live per container id and drop to nothing when a request ends.
 */
export class ReplicaPicker {
  private readonly outstanding = new Map<string, number>();
  private turn = 0;

  /** The replica to use, or undefined when none is ready. */
  pick(endpoints: readonly ReadyEndpoint[]): ReadyEndpoint | undefined {
    if (endpoints.length === 0) return undefined;
    let best: ReadyEndpoint[] = [];
    let min = Number.POSITIVE_INFINITY;
    for (const ep of endpoints) {
      const n = this.outstanding.get(ep.containerId) ?? 0;
      if (n < min) {
        min = n;
        best = [ep];
      } else if (n === min) best.push(ep);
    }
    this.turn = (this.turn + 1) % 1_000_000;
    return best[this.turn % best.length];
  }

  /**
   * Counts a request against `ep`; the returned function ends it (idempotent), at once, or when
   * `stream` closes if it is still open. What an open stream keeps for it is its container id and
   * one listener: the endpoint object is not held, and `on` rather than `once` (a stream closes
   * once) saves once()'s wrapper per request.
   */
  begin(ep: ReadyEndpoint): (stream?: { on(event: 'close', fn: () => void): unknown; destroyed: boolean }) => void {
    const id = ep.containerId;
    this.outstanding.set(id, (this.outstanding.get(id) ?? 0) + 1);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      const n = (this.outstanding.get(id) ?? 1) - 1;
      if (n <= 0) this.outstanding.delete(id);
      else this.outstanding.set(id, n);
    };
    return (stream) => {
      // The response may still be streaming when forward() resolves on close; count until close.
      if (stream === undefined || stream.destroyed) end();
      else stream.on('close', end);
    };
  }

  /** Requests in flight to a container (for tests and metrics). */
  inFlight(containerId: string): number {
    return this.outstanding.get(containerId) ?? 0;
  }
}
