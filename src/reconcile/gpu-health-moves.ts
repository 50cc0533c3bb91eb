import { stableName, type Action } from '../domain/replica-planner.js';
import type { ObservedContainer } from '../domain/observed-container.js';
import type { GpuBook } from './gpu-book.js';

export interface GpuHealthMoves {
  actions: Action[];
  /** Replicas that must wait for healthy GPUs, with the reason (shown as `pending`). */
  waiting: Map<number, string>;
}

/**
 * Rewrites a plan's `start` actions for containers that hold an unhealthy GPU (GpuBook
 * `restartVerdict`): a container's GPUs are fixed at creation, so instead of starting it again it
 * is removed and its replica created anew, where the allocator gives it healthy GPUs; when not
 * enough are free the start is dropped and the replica waits with a reason. Removal runs before
 * creation in the executor, so the old claim is released first. Every other action passes through.
 */
export function moveOffUnhealthyGpus(
  actions: readonly Action[],
  containers: readonly ObservedContainer[],
  book: GpuBook,
  service: { serviceId: string; serviceSlug: string; gpuCount: number },
): GpuHealthMoves {
  const out: Action[] = [];
  const waiting = new Map<number, string>();
  for (const action of actions) {
    const c = action.kind === 'start' ? containers.find((x) => x.id === action.containerId) : undefined;
    const held = c ? book.idsOf(c) : [];
    if (action.kind !== 'start' || held.length === 0) {
      out.push(action);
      continue;
    }
    const verdict = book.restartVerdict(service.serviceId, service.serviceSlug, action.index, service.gpuCount, held);
    if (verdict.kind === 'keep') out.push(action);
    else if (verdict.kind === 'wait') waiting.set(action.index, verdict.reason);
    else {
      out.push({ kind: 'remove', index: action.index, containerId: action.containerId, reason: verdict.reason });
      out.push({ kind: 'create', index: action.index, name: stableName(service.serviceSlug, action.index), reason: verdict.reason });
    }
  }
  return { actions: out, waiting };
}
