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

  /** Counts a request against `ep`; the returned function ends it (idempotent). */
  begin(ep: ReadyEndpoint): (stream?: { once(event: 'close', fn: () => void): unknown; destroyed: boolean }) => void {
    this.outstanding.set(ep.containerId, (this.outstanding.get(ep.containerId) ?? 0) + 1);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      const n = (this.outstanding.get(ep.containerId) ?? 1) - 1;
      if (n <= 0) this.outstanding.delete(ep.containerId);
      else this.outstanding.set(ep.containerId, n);
    };
    return (stream) => {
      // The response may still be streaming when forward() resolves on close; count until close.
      if (stream === undefined || stream.destroyed) end();
      else stream.once('close', end);
    };
  }

  /** Requests in flight to a container (for tests and metrics). */
  inFlight(containerId: string): number {
    return this.outstanding.get(containerId) ?? 0;
  }
}
