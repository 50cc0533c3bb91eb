import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { AgentError, ErrorCodes } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { familiarImageRef } from '../domain/image-gc.js';

/** What the agent remembers of one image it pulled itself. */
export interface PulledImageRecord {
  /** The reference pulled (a service's `docker_image`), in the engine's familiar form (familiarImageRef). */
  ref: string;
  /** Epoch ms. */
  pulledAt: number;
  /** Epoch ms of the pull or the last time one of the agent's containers used it. */
  lastUsedAt: number;
}

interface FileShape {
  version: 1;
  images: PulledImageRecord[];
}

/**
 * The images the agent pulled for services, kept in `state_dir/pulled-images.json` so that image
 * GC knows them after a restart (an image the agent does not know it pulled is never removed).
 * Written atomically like desired.json (temp file, fsync, rename), one write at a time, the last
 * call's content winning. Losing the file only makes GC forget images (the safe direction).
 */
export class PulledImages {
  readonly file: string;
  private readonly images = new Map<string, PulledImageRecord>();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    stateDir: string,
    /** Where a failed background save is reported (the collector logs it); the next save tries again. */
    private readonly onSaveError: (err: unknown) => void = () => undefined,
  ) {
    this.file = path.join(stateDir, 'pulled-images.json');
  }

  /** Reads the file; a missing file is an empty record. Throws STATE_IO naming the file when it is unreadable or corrupt. */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new AgentError(ErrorCodes.STATE_IO, `cannot read ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    let parsed: FileShape;
    try {
      parsed = parseFile(JSON.parse(text) as unknown);
    } catch (err) {
      throw new AgentError(ErrorCodes.STATE_IO, `${this.file} is corrupt (${(err as Error).message}); delete it (image GC then forgets which images the agent pulled, and removes none of them)`, { cause: err });
    }
    this.images.clear();
    for (const image of parsed.images) this.images.set(image.ref, image);
  }

  list(): PulledImageRecord[] {
    return [...this.images.values()];
  }

  has(ref: string): boolean {
    return this.images.has(familiarImageRef(ref));
  }

  /** The agent pulled `ref` at `now`. Saved in the background; call `flush` to wait. */
  recordPull(pulled: string, now: number): void {
    const ref = familiarImageRef(pulled);
    this.images.set(ref, { ref, pulledAt: now, lastUsedAt: now });
    this.save();
  }

  /** Containers of the agent use these references now. Saves when anything changed. */
  touch(refs: Iterable<string>, now: number): void {
    let changed = false;
    for (const ref of refs) {
      const image = this.images.get(ref);
      if (image === undefined || image.lastUsedAt >= now) continue;
      this.images.set(ref, { ...image, lastUsedAt: now });
      changed = true;
    }
    if (changed) this.save();
  }

  /** The image is gone (removed by GC, or no longer on the engine). */
  forget(refs: Iterable<string>): void {
    let changed = false;
    for (const ref of refs) changed = this.images.delete(ref) || changed;
    if (changed) this.save();
  }

  /** Resolves when every save requested so far is on disk (or has failed). */
  flush(): Promise<void> {
    return this.queue;
  }

  private save(): void {
    const body: FileShape = { version: 1, images: this.list() };
    const run = this.queue.then(async () => {
      await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.file, JSON.stringify(body));
    });
    this.queue = run.catch((err: unknown) => this.onSaveError(err));
  }
}

function parseFile(raw: unknown): FileShape {
  const file = raw as { version?: unknown; images?: unknown } | null;
  if (file === null || typeof file !== 'object') throw new Error('not a JSON object');
  if (file.version !== 1) throw new Error(`unknown version ${JSON.stringify(file.version)}`);
  if (!Array.isArray(file.images)) throw new Error('"images" is not an array');
  const images = file.images.map((entry: unknown, i): PulledImageRecord => {
    const e = entry as Partial<PulledImageRecord> | null;
    if (e === null || typeof e !== 'object' || typeof e.ref !== 'string' || e.ref === '') throw new Error(`images[${i}].ref is missing`);
    if (typeof e.pulledAt !== 'number' || typeof e.lastUsedAt !== 'number') throw new Error(`images[${i}] (${e.ref}) has no pulledAt/lastUsedAt`);
    return { ref: e.ref, pulledAt: e.pulledAt, lastUsedAt: e.lastUsedAt };
  });
  return { version: 1, images };
}
