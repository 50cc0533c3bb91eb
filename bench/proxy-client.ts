import { parentPort, workerData } from 'node:worker_threads';
import { Agent as Dispatcher, request } from 'undici';

/**
 * The load generator of bench/proxy.bench.ts, run in a worker thread so that the client does not
 * share an event loop with the gateway and agent it measures. Receives {kind, url, headers},
 * posts back the measurement.
 */

export const SMALL_SECONDS = 3;
/** Closed-loop clients of the throughput measurement. */
export const CONCURRENCY = 64;
/** Closed-loop clients of the latency measurement, each timing LATENCY_SAMPLES requests. */
export const LATENCY_CONCURRENCY = 4;
const LATENCY_SAMPLES = 200;
export const BULK_BYTES = 512 * 1024 * 1024;
export const SSE_SAMPLES = 40;

export const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};

/** Requests per second of `CONCURRENCY` closed-loop clients for SMALL_SECONDS. */
async function throughput(url: string, headers: Record<string, string>, dispatcher: Dispatcher): Promise<number> {
  let count = 0;
  const end = performance.now() + SMALL_SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const res = await request(url, { headers, dispatcher });
        await res.body.text();
        if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode}`);
        count++;
      }
    }),
  );
  return count / SMALL_SECONDS;
}

/** Request latencies in ms of LATENCY_CONCURRENCY closed-loop clients. */
async function latencies(url: string, headers: Record<string, string>, dispatcher: Dispatcher): Promise<number[]> {
  const out: number[] = [];
  await Promise.all(
    Array.from({ length: LATENCY_CONCURRENCY }, async () => {
      for (let i = 0; i < LATENCY_SAMPLES; i++) {
        const t0 = performance.now();
        const res = await request(url, { headers, dispatcher });
        await res.body.text();
        out.push(performance.now() - t0);
      }
    }),
  );
  return out;
}

/** MB/s of one download of BULK_BYTES. */
async function bulk(url: string, headers: Record<string, string>, dispatcher: Dispatcher): Promise<number> {
  const t0 = performance.now();
  const res = await request(`${url}?n=${BULK_BYTES}`, { headers, dispatcher });
  let n = 0;
  for await (const chunk of res.body) n += (chunk as Buffer).byteLength;
  if (n !== BULK_BYTES) throw new Error(`bulk: got ${n} bytes`);
  return BULK_BYTES / 1e6 / ((performance.now() - t0) / 1000);
}

/** Median ms from request start to the first SSE event. */
async function firstEvent(url: string, headers: Record<string, string>, dispatcher: Dispatcher): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < SSE_SAMPLES; i++) {
    // The stream is read to its end (a second event 20 ms later) rather than destroyed after the
    // first one: destroying it would tear down the pooled connections on every hop (client →
    // gateway, agent → replica) and measure TCP setup instead of the event's way through.
    const t0 = performance.now();
    const res = await request(`${url}?n=2&ms=20`, { headers, dispatcher });
    let first: number | undefined;
    for await (const chunk of res.body) {
      if (first === undefined && String(chunk).includes('\n\n')) first = performance.now() - t0;
    }
    if (first !== undefined) xs.push(first);
  }
  return quantile(xs, 0.5);
}


export type Measure = 'throughput' | 'latencies' | 'bulk' | 'firstEvent';

if (parentPort !== null && workerData !== null && typeof workerData === 'object') {
  const { kind, url, headers } = workerData as { kind: Measure; url: string; headers: Record<string, string> };
  const dispatcher = new Dispatcher({ connections: CONCURRENCY * 2 });
  const run = { throughput, latencies, bulk, firstEvent }[kind];
  const result = await run(url, headers, dispatcher);
  await dispatcher.close();
  parentPort.postMessage(result);
}
