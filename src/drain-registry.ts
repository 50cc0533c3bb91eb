import type { Logger } from './log.js';

/**
 * A participant in graceful shutdown. Called once, at the start of `Agent.stop()`, before the
 * tunnel closes. It must stop accepting new work at once (e.g. refuse new proxy streams) and
 * resolve when its in-flight work has finished. When `deadline` aborts (the drain timeout passed),
 * it must cut what is left (e.g. `stream.reset` each open stream) and resolve promptly.
 * Containers are never touched by a drain: agent shutdown is not workload shutdown.
 */
export type DrainFn = (deadline: AbortSignal) => Promise<void>;

export interface DrainResult {
  /** Participants that finished before the deadline. */
  drained: string[];
  /** Participants still busy at the deadline (told to cut via the signal). */
  cut: string[];
}

/** After the deadline, how long participants get to cut and settle before stop goes on regardless. */
const CUT_GRACE_MS = 2_000;

/**
 * Registry of drain participants; the agent owns one. With nothing registered, `drain` resolves at
 * once. `drain` runs at most once: a second call returns the first call's promise.
 */
export class DrainRegistry {
  private readonly participants = new Map<string, DrainFn>();
  private running: Promise<DrainResult> | undefined;

  constructor(private readonly logger: Logger) {}

  /** Registers `fn` under `name` (unique; a second registration replaces the first). Returns an unregister function. */
  register(name: string, fn: DrainFn): () => void {
    this.participants.set(name, fn);
    return () => {
      if (this.participants.get(name) === fn) this.participants.delete(name);
    };
  }

  drain(timeoutMs: number): Promise<DrainResult> {
    this.running ??= this.run(timeoutMs);
    return this.running;
  }

  private async run(timeoutMs: number): Promise<DrainResult> {
    const result: DrainResult = { drained: [], cut: [] };
    if (this.participants.size === 0) return result;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error(`drain timeout of ${timeoutMs} ms passed`)), timeoutMs);
    const started = Date.now();
    this.logger.info({ participants: [...this.participants.keys()], timeoutMs }, 'draining');
    const settle = [...this.participants].map(async ([name, fn]) => {
      try {
        await fn(deadline.signal);
      } catch (err) {
        this.logger.warn({ err, participant: name }, 'drain participant failed');
      }
      (deadline.signal.aborted ? result.cut : result.drained).push(name);
    });
    const all = Promise.all(settle);
    await Promise.race([all, new Promise<void>((resolve) => deadline.signal.addEventListener('abort', () => resolve(), { once: true }))]);
    if (deadline.signal.aborted) {
      await Promise.race([all, new Promise<void>((resolve) => setTimeout(resolve, CUT_GRACE_MS).unref())]);
      for (const name of this.participants.keys()) if (!result.drained.includes(name) && !result.cut.includes(name)) result.cut.push(name);
    }
    clearTimeout(timer);
    this.logger.info({ ...result, ms: Date.now() - started }, 'drain finished');
    return result;
  }
}
