import { Agent as Dispatcher, request } from 'undici';

/**
 * Closed-loop proxy load for the fault scenarios: `clients` loops GET `url` through the gateway
 * and file every outcome. An outcome is one of: `answered` (200 with the replica's body),
 * `clean-5xx` (a complete 502/503/504 answer from the gateway), or a failure named by what went
 * wrong (`status-<n>`, `truncated`, `error-<code>`). `refused` (the gateway not listening, only
 * while a scenario has it down on purpose) is counted apart.
 */
export interface Outcomes {
  answered: number;
  clean5xx: number;
  refused: number;
  failures: Record<string, number>;
}

export interface Load {
  outcomes: Outcomes;
  /** ms timestamp of the last `answered`. */
  lastAnsweredAt: number;
  /** When each failure happened (ms timestamps, sent and ended), to set beside a scenario's faults. */
  failureTimes: Array<{ sentAt: number; at: number; what: string }>;
  stop(): Promise<Outcomes>;
}

export const failureCount = (o: Outcomes): number => Object.values(o.failures).reduce((a, b) => a + b, 0);

export function startLoad(url: string, headers: Record<string, string>, expectBody: string, clients = 4): Load {
  const dispatcher = new Dispatcher({ connections: clients * 2, keepAliveTimeout: 4_000 });
  const outcomes: Outcomes = { answered: 0, clean5xx: 0, refused: 0, failures: {} };
  let running = true;
  const load: Load = { outcomes, lastAnsweredAt: 0, failureTimes: [], stop: async () => outcomes };
  const one = async (): Promise<void> => {
    const sentAt = Date.now();
    const fail = (what: string) => {
      outcomes.failures[what] = (outcomes.failures[what] ?? 0) + 1;
      load.failureTimes.push({ sentAt, at: Date.now(), what });
    };
    let status = 0;
    try {
      const res = await request(url, { headers, dispatcher, signal: AbortSignal.timeout(15_000) });
      status = res.statusCode;
      const body = await res.body.text();
      if (status === 200 && body.includes(expectBody)) {
        outcomes.answered++;
        load.lastAnsweredAt = Date.now();
      } else if (status === 502 || status === 503 || status === 504) {
        outcomes.clean5xx++;
        await new Promise((r) => setTimeout(r, 10)); // a client's pause before it retries
      }
      else fail(`status-${status}`);
    } catch (err) {
      const code = (err as { code?: string; cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code ?? (err as Error).name;
      if (code === 'ECONNREFUSED') outcomes.refused++;
      else fail(`${status === 0 ? 'error' : `truncated-${status}`}-${code}: ${(err as Error).message.slice(0, 60)}`);
      // A refused dial is immediate: do not spin on it.
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const loops = Array.from({ length: clients }, async () => {
    while (running) await one();
  });
  load.stop = async () => {
    running = false;
    await Promise.all(loops);
    await dispatcher.close();
    return outcomes;
  };
  return load;
}
