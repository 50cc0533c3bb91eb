import { setMaxListeners } from 'node:events';
import { readFile } from 'node:fs/promises';
import { Agent as Dispatcher, request } from 'undici';
import { adminGet } from '../src/admin/admin-client.js';
import { parsePromText } from '../test/helpers/prom-text.js';
import type { Rig } from './proxy-rig.js';

/** How many SSE streams the scale row holds open at once through one agent. */
export const SCALE_STREAMS = 1000;

/** VmRSS of a process in KiB. */
export async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
}

/**
 * Summed VmRSS of `pids`; a process that has exited (gone, or a zombie, which has no VmRSS) holds
 * nothing and counts 0: sshd's per-connection children come and go while the streams open, and
 * one that had just exited made sshd's row read NaN.
 */
const sumRss = async (pids: number[]): Promise<number> => {
  const each = await Promise.all(pids.map((pid) => rssKiB(pid).catch(() => 0)));
  return each.reduce((a, b) => a + (Number.isNaN(b) ? 0 : b), 0);
};

/**
 * Opens SCALE_STREAMS SSE streams at `url` (one event a second each, for longer than the
 * measurement), waits until every one delivered its first event and a few more seconds passed
 * (every stream's buffers at their steady size), and returns what `whileOpen` returns. Every stream
 * is closed before it returns; a call inside `whileOpen` opens as many more beside them.
 */
export async function withOpenStreams<T>(url: string, headers: Record<string, string>, whileOpen: () => Promise<T>): Promise<T> {
  const dispatcher = new Dispatcher({ connections: SCALE_STREAMS + 16, pipelining: 1 });
  const aborts = new AbortController();
  setMaxListeners(SCALE_STREAMS + 10, aborts.signal); // one listener per request
  let opened = 0;
  let failed: unknown;
  const allOpen = new Promise<void>((resolve) => {
    for (let i = 0; i < SCALE_STREAMS; i++) {
      void (async () => {
        try {
          const res = await request(`${url}?n=600&ms=1000`, { headers, dispatcher, signal: aborts.signal });
          if (res.statusCode !== 200) throw new Error(`SSE stream ${i}: HTTP ${res.statusCode}`);
          let first = true;
          for await (const chunk of res.body) {
            if (first && String(chunk).includes('\n\n')) {
              first = false;
              if (++opened === SCALE_STREAMS) resolve();
            }
          }
        } catch (err) {
          if (!aborts.signal.aborted) {
            failed ??= err;
            resolve();
          }
        }
      })();
    }
  });
  const timeout = setTimeout(() => aborts.abort(), 120_000);
  try {
    await allOpen;
    if (failed !== undefined) throw failed;
    if (opened < SCALE_STREAMS) throw new Error(`only ${opened} of ${SCALE_STREAMS} SSE streams delivered an event within 120 s`);
    await new Promise((r) => setTimeout(r, 3_000));
    return await whileOpen();
  } finally {
    clearTimeout(timeout);
    aborts.abort();
    await dispatcher.destroy().catch(() => undefined);
  }
}

/** Seconds the processes are left idle before the idle reading (see settledRss). */
const IDLE_SETTLE_S = 15;

/**
 * The processes' summed RSS after IDLE_SETTLE_S seconds without traffic, the lowest of the last
 * three readings a second apart. An idle Node process shrinks its heap some seconds after its last
 * burst of work (V8's memory reducer: full GCs that also shrink the young generation back to its
 * minimum); with `--trace-gc` the agent's committed heap read ~43 MB before that and ~27–29 MB
 * after. An idle reading taken before the reducer ran made the row up to ~16 KiB per stream lower.
 */
async function settledRss(pids: () => Promise<number[]>): Promise<number> {
  await new Promise((r) => setTimeout(r, (IDLE_SETTLE_S - 2) * 1000));
  const readings: number[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 1000));
    readings.push(await sumRss(await pids()));
  }
  return Math.min(...readings);
}

/**
 * Opens SCALE_STREAMS SSE streams at `url` (withOpenStreams) and returns the RSS the processes
 * `pids()` gained per open stream, in KiB, against their settled idle RSS (settledRss).
 */
export async function rssPerOpenStream(url: string, headers: Record<string, string>, pids: () => Promise<number[]>): Promise<number> {
  const idle = await settledRss(pids);
  const open = await withOpenStreams(url, headers, async () => sumRss(await pids()));
  return (open - idle) / SCALE_STREAMS;
}

/** RSS and V8's young generation grown per stream, in KiB, over one step of SCALE_STREAMS streams. */
export interface StreamStep {
  rss: number;
  /** Only with an agent's admin socket. */
  young: number | undefined;
}

/**
 * The scale row, and what the streams after it cost. `first`: from the settled idle RSS to
 * SCALE_STREAMS open streams, as rssPerOpenStream; `added`: from there to twice as many, the first
 * ones still open. With `adminSocket` (an agent's), each step's young generation too: its two
 * semi-spaces as the agent's /metrics shows them at the same readings.
 *
 * The first step spreads sizes of the process over its streams: the young generation grows to its
 * bound (`--max-semi-space-size`) when scavenges keep finding survivors, as while a thousand streams
 * open, and goes back only when the process is quiet (a size it has under any sustained traffic),
 * and the code the streams run is compiled on first use. `added` is what one more open stream costs
 * a process that serves streams at all (docs/proxy-performance.md).
 */
export async function openStreamGrowth(
  url: string,
  headers: Record<string, string>,
  pids: () => Promise<number[]>,
  adminSocket?: string,
): Promise<{ first: StreamStep; added: StreamStep }> {
  const young = async () => (adminSocket === undefined ? undefined : await youngGenerationKiB(adminSocket));
  const reading = async () => ({ rss: await sumRss(await pids()), young: await young() });
  const idle = { rss: await settledRss(pids), young: await young() };
  const [one, two] = await withOpenStreams(url, headers, async () => {
    const atOne = await reading();
    return [atOne, await withOpenStreams(url, headers, reading)] as const;
  });
  const step = (from: typeof idle, to: typeof idle): StreamStep => ({
    rss: (to.rss - from.rss) / SCALE_STREAMS,
    young: to.young === undefined || from.young === undefined ? undefined : (to.young - from.young) / SCALE_STREAMS,
  });
  return { first: step(idle, one), added: step(one, two) };
}

/**
 * The scale row's two sides on one rig, each from its settled idle RSS (openStreamGrowth): ssh -L's
 * side of the replica is sshd (its per-connection child, not the ssh client), as the agent is the
 * tunnel's; the agent's steps with its young generation.
 */
export async function scaleSteps(rig: Pick<Rig, 'ssh' | 'sshPids' | 'tunnel' | 'pids' | 'agentAdminSocket'>, auth: Record<string, string>): Promise<{ sshd: { first: StreamStep; added: StreamStep }; agent: { first: StreamStep; added: StreamStep } }> {
  const sshd = await openStreamGrowth(`${rig.ssh}/sse`, {}, async () => (await rig.sshPids()).slice(1));
  const agent = await openStreamGrowth(`${rig.tunnel}/sse`, auth, async () => [rig.pids.agent], rig.agentAdminSocket);
  return { sshd, agent };
}

/** The young generation's size ("new" space) in KiB, from an agent's /metrics on its admin socket. */
async function youngGenerationKiB(adminSocket: string): Promise<number> {
  const { status, body } = await adminGet({ kind: 'unix', path: adminSocket }, '/metrics');
  const bytes = status === 200 ? parsePromText(body).value('nodejs_heap_space_size_total_bytes', { space: 'new' }) : undefined;
  if (bytes === undefined) throw new Error(`the agent's /metrics (${adminSocket}) shows no young generation: HTTP ${status}`);
  return bytes / 1024;
}
