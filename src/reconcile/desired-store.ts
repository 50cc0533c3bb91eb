import { mkdir, readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic-file.js';
import path from 'node:path';
import { AgentError, ErrorCodes } from '../errors.js';
import { formatIssues } from '../service-definition/issue-text.js';
import { validateServiceDefinition } from '../service-definition/schema.js';
import type { DesiredService } from '../service-definition/types.js';

export interface DesiredSnapshot {
  revision: number;
  source: string;
  services: DesiredService[];
  /**
   * Ids of services this agent ran and that were removed since (most recent last, at most
   * MAX_REMOVED): after a restart their containers still go at once, not after the orphan grace.
   */
  removed?: string[];
}

export const MAX_REMOVED = 500;

/**
 * The last full desired set, persisted so that after a restart the agent keeps enforcing it before
 * any gateway answers (and counts it as the first full snapshot). Writes are atomic: temp file,
 * fsync, rename. The file holds env values: it is created 0600.
 */
export class DesiredStore {
  readonly file: string;
  /** Saves run one at a time, in call order; the last call's snapshot is what ends on disk. */
  private queue: Promise<void> = Promise.resolve();

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'desired.json');
  }

  async load(): Promise<DesiredSnapshot | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new AgentError(ErrorCodes.STATE_IO, `cannot read ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      return parseSnapshot(JSON.parse(text) as unknown);
    } catch (err) {
      throw new AgentError(ErrorCodes.STATE_IO, `${this.file} is corrupt (${(err as Error).message}); delete it to start from the gateway's state`, { cause: err });
    }
  }

  save(snapshot: DesiredSnapshot): Promise<void> {
    const run = this.queue.then(() => this.write(snapshot));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(snapshot: DesiredSnapshot): Promise<void> {
    try {
      await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new AgentError(ErrorCodes.STATE_IO, `cannot create ${path.dirname(this.file)}: ${(err as Error).message}`, { cause: err, retryable: true });
    }
    await writeFileAtomic(this.file, JSON.stringify(snapshot));
  }
}

/**
 * A snapshot as read back: every definition validated again (a file edited by hand, or written by
 * another version, must not reach the planner unchecked). Files of agents before 0.2 name the
 * definition `spec`. Any invalid entry makes the whole file unusable: dropping one entry would let
 * its containers be treated as orphans.
 */
function parseSnapshot(raw: unknown): DesiredSnapshot {
  const file = raw as { revision?: unknown; source?: unknown; services?: unknown } | null;
  if (file === null || typeof file !== 'object') throw new Error('not a JSON object');
  if (!Array.isArray(file.services)) throw new Error('"services" is not an array');
  const services = file.services.map((entry: unknown, i): DesiredService => {
    const e = entry as { id?: unknown; definition?: unknown; spec?: unknown; deployedAt?: unknown } | null;
    if (e === null || typeof e !== 'object' || typeof e.id !== 'string' || e.id === '') throw new Error(`services[${i}].id is missing`);
    const checked = validateServiceDefinition(e.definition ?? e.spec);
    if (!checked.ok) throw new Error(`services[${i}] (${e.id}) is not a valid service definition: ${formatIssues(checked.issues)}`);
    return { id: e.id, definition: checked.value, ...(typeof e.deployedAt === 'number' ? { deployedAt: e.deployedAt } : {}) };
  });
  const removed = Array.isArray((file as { removed?: unknown }).removed) ? ((file as { removed: unknown[] }).removed.filter((id) => typeof id === 'string' && id !== '') as string[]) : [];
  return { revision: typeof file.revision === 'number' ? file.revision : 0, source: typeof file.source === 'string' ? file.source : 'disk', services, removed };
}
