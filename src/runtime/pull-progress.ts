/**
 * What a pull reports: the engine's JSON-lines pull messages folded into one PullProgress per pull
 * (bytes and layers), and how a reference becomes the `fromImage`/`tag` of POST /images/create. Pure.
 */
import type { PullProgress } from './container-runtime.js';

interface LayerProgress {
  current: number;
  total: number;
  done: boolean;
}

export interface PullMessage {
  status?: unknown;
  id?: unknown;
  error?: unknown;
  errorDetail?: { message?: unknown };
  progressDetail?: { current?: unknown; total?: unknown };
}

/** Statuses Docker reports per layer; other lines (e.g. "Pulling from …" with id = tag) are not layers. */
const LAYER_STATUSES = new Set([
  'Pulling fs layer',
  'Waiting',
  'Downloading',
  'Verifying Checksum',
  'Download complete',
  'Extracting',
  'Pull complete',
  'Already exists',
]);

/** Splits a reference into the `fromImage` and `tag` parameters of POST /images/create. */
export function splitReference(ref: string): { fromImage: string; tag: string } {
  const at = ref.indexOf('@');
  if (at >= 0) return { fromImage: ref.slice(0, at), tag: ref.slice(at + 1) };
  const lastSlash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > lastSlash) return { fromImage: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  // Without a tag the engine would pull every tag of the repository.
  return { fromImage: ref, tag: 'latest' };
}

/** Folds pull JSON messages into PullProgress. Returns whether the aggregate changed. */
export class PullProgressTracker {
  private readonly layers = new Map<string, LayerProgress>();

  apply(message: PullMessage): boolean {
    const status = typeof message.status === 'string' ? message.status : undefined;
    const id = typeof message.id === 'string' ? message.id : undefined;
    if (status === undefined || id === undefined || !LAYER_STATUSES.has(status)) return false;
    const before = JSON.stringify(this.snapshot());
    const layer = this.layers.get(id) ?? { current: 0, total: 0, done: false };
    this.layers.set(id, layer);
    if (status === 'Downloading') {
      const current = Number(message.progressDetail?.current);
      const total = Number(message.progressDetail?.total);
      if (Number.isFinite(current)) layer.current = current;
      if (Number.isFinite(total) && total > 0) layer.total = total;
    } else if (status === 'Download complete' || status === 'Verifying Checksum') {
      layer.current = layer.total;
    } else if (status === 'Pull complete' || status === 'Already exists') {
      layer.current = layer.total;
      layer.done = true;
    }
    return JSON.stringify(this.snapshot()) !== before;
  }

  snapshot(): PullProgress {
    let currentBytes = 0;
    let totalBytes = 0;
    let layersDone = 0;
    for (const layer of this.layers.values()) {
      currentBytes += layer.current;
      totalBytes += layer.total;
      if (layer.done) layersDone++;
    }
    return { currentBytes, totalBytes, layers: this.layers.size, layersDone };
  }
}
