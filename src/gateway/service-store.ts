import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError, ErrorCodes } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { Logger } from '../log.js';
import type { ServiceDefinition } from '../service-definition/types.js';

/**
 * What the operator asked for, independent of what agents report:
 *
 *   created ──deploy──▶ deployed ──undeploy──▶ undeployed ──deploy──▶ deployed …
 */
export type Lifecycle = 'created' | 'deployed' | 'undeployed';

export interface StoredService {
  id: string;
  definition: ServiceDefinition;
  lifecycle: Lifecycle;
  /** ISO 8601 */
  createdAt: string;
  /** ISO 8601 */
  updatedAt: string;
  /** Epoch ms of the last deploy; agent reports received before it describe an older deployment. */
  deployedAt: number | undefined;
}

/** What a transaction returns: a result, and the new full set when it changes anything. */
export type StoreTxResult<R> = { result: R; next?: StoredService[] };

const FILE_NAME = 'services.json';
const FORMAT = 1;

/**
 * Service definitions of the local gateway, persisted as one JSON file in the data dir.
 *
 * Every change goes through `transact`, serialized: the callback sees the committed set, and a new
 * set it returns is written (temp file + fsync + rename) before it becomes visible, so a crash or a
 * failed write never leaves a partial state on disk or in memory.
 */
export class ServiceStore {
  private services: StoredService[] = [];
  /** Lookups by id and by slug, rebuilt with every committed set (the proxy looks up a slug per request). */
  private byId = new Map<string, StoredService>();
  private bySlug = new Map<string, StoredService>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<() => void>();

  private constructor(
    private readonly dataDir: string,
    initial: StoredService[],
    private readonly logger: Logger,
  ) {
    this.commit(initial);
  }

  /** Opens (or creates) the store in `dataDir`. A corrupt file is an error, never silently reset. */
  static async open(dataDir: string, logger: Logger): Promise<ServiceStore> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const path = join(dataDir, FILE_NAME);
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new AgentError(ErrorCodes.STATE_IO, `cannot read ${path}: ${(err as Error).message}`, { cause: err });
      }
    }
    const services = text === undefined ? [] : parseFile(text, path);
    logger.info({ path, services: services.length }, 'service store opened');
    return new ServiceStore(dataDir, services, logger);
  }

  /** All services, oldest first (then by id). */
  list(): readonly StoredService[] {
    return this.services;
  }

  get(id: string): StoredService | undefined {
    return this.byId.get(id);
  }

  getBySlug(slug: string): StoredService | undefined {
    return this.bySlug.get(slug);
  }

  /** Called after every committed change. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Runs `fn` against the committed set, alone. When it returns `next`, that set is persisted and
   * then committed; if persisting fails the error propagates and nothing changes.
   */
  transact<R>(fn: (current: readonly StoredService[]) => StoreTxResult<R>): Promise<R> {
    const run = async (): Promise<R> => {
      const { result, next } = fn(this.services);
      if (next !== undefined) {
        const sorted = [...next].sort(compareServices);
        await this.persist(sorted);
        this.commit(sorted);
        for (const listener of this.listeners) {
          try {
            listener();
          } catch (err) {
            this.logger.error({ err }, 'service store listener failed');
          }
        }
      }
      return result;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Makes `services` the committed set; the first of the set wins a lookup, as a scan in order would. */
  private commit(services: StoredService[]): void {
    const byId = new Map<string, StoredService>();
    const bySlug = new Map<string, StoredService>();
    for (const s of services) {
      if (!byId.has(s.id)) byId.set(s.id, s);
      if (!bySlug.has(s.definition.service_slug)) bySlug.set(s.definition.service_slug, s);
    }
    this.services = services;
    this.byId = byId;
    this.bySlug = bySlug;
  }

  private async persist(services: StoredService[]): Promise<void> {
    await writeFileAtomic(join(this.dataDir, FILE_NAME), `${JSON.stringify({ format: FORMAT, services }, null, 2)}\n`);
  }
}

function compareServices(a: StoredService, b: StoredService): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function parseFile(text: string, path: string): StoredService[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AgentError(ErrorCodes.STATE_IO, `${path} is not valid JSON (${(err as Error).message}); restore it or move it away`, { cause: err });
  }
  const doc = raw as { format?: unknown; services?: unknown };
  if (doc.format !== FORMAT || !Array.isArray(doc.services)) {
    throw new AgentError(ErrorCodes.STATE_IO, `${path} has an unknown format (expected {"format": ${FORMAT}, "services": [...]})`);
  }
  return (doc.services as StoredService[])
    .map((s) => ({ ...s, deployedAt: s.deployedAt ?? undefined }))
    .sort(compareServices);
}
