import { Prng } from '../../test/helpers/prng.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import { failureCount, startLoad, type Load, type Outcomes } from './load.js';
import { fingerprints, mib, restartedSince, SK } from './rig.js';
import { serviceBody, startStack, type Stack } from './stack.js';

export const DROPS = 100;
export const GATEWAY_RESTARTS = 3;
const SLUG = 'ft-web';

export interface TunnelFigures {
  drops: number;
  outcomes: Outcomes;
  workloadRestarts: number;
  /** ms from a drop to the next answered request, each drop. */
  resumeMs: number[];
  rssMiB: { agentBefore: number; agentAfter: number; gatewayBefore: number; gatewayAfter: number };
}

export interface GatewayFigures {
  restarts: number;
  outcomes: Outcomes;
  workloadRestarts: number;
  /** ms from the gateway's stop to the next answered request, each restart. */
  resumeMs: number[];
}

/** Waits until a request started after `since` was answered by the replica; returns when. */
async function resumed(load: Load, since: number, what: string): Promise<number> {
  await waitFor(what, () => load.lastAnsweredAt > since, 60_000, 10);
  return load.lastAnsweredAt;
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One stack behind the relay, a 2-replica service under 4 closed-loop clients. First the tunnel
 * is cut DROPS times, each at a random moment (0–400 ms) after traffic resumed from the last
 * cut; then the gateway is restarted (SIGTERM, same port and data dir) GATEWAY_RESTARTS times.
 */
export async function tunnelAndGatewayScenario(seed: number, log: (s: string) => void): Promise<{ tunnel: TunnelFigures; gateway: GatewayFigures }> {
  const prng = new Prng(seed ^ 0x5eed);
  const stack: Stack = await startStack('tunnel', { relay: true });
  try {
    const created = await stack.api.create(serviceBody(SLUG, 2));
    await stack.api.deploy(created.body.id);
    const ctrs = await stack.waitRunning(SLUG, 2, 90_000);
    const before = await fingerprints(stack.engine, ctrs.map((c) => c.id));
    const url = `${stack.gateway.url}/api/v1/r/containers/${SLUG}/health`;
    let load = startLoad(url, { authorization: `Bearer ${SK}` }, 'ok');
    await settle(5_000); // warm: JIT, pools, heap sized to the traffic
    // "Before" is taken after the first 20 drops: by then the heaps have grown to what drops under
    // load need; what grows from there to the 100th is what the drops leak.
    let rssBefore = { agent: 0, gateway: 0 };
    const resumeMs: number[] = [];
    const cutAt: number[] = [];
    for (let i = 1; i <= DROPS; i++) {
      await settle(prng.int(0, 400));
      const t = Date.now();
      cutAt.push(t);
      stack.relay!.drop();
      resumeMs.push((await resumed(load, t, `traffic after drop ${i}`)) - t);
      if (i === 20) rssBefore = { agent: stack.agent.rss(), gateway: stack.gateway.rss() };
      if (i % 20 === 0) log(`  tunnel drop ${i}/${DROPS}: ${JSON.stringify(load.outcomes)}; RSS agent ${mib(stack.agent.rss())} MiB, gateway ${mib(stack.gateway.rss())} MiB`);
    }
    await settle(5_000);
    for (const f of load.failureTimes) {
      const cut = cutAt.filter((c) => c <= f.at).length - 1;
      log(`  failure ${f.what}: sent ${cut < 0 ? '?' : f.sentAt - (cutAt[cut] ?? 0)} ms and ended ${cut < 0 ? '?' : f.at - (cutAt[cut] ?? 0)} ms after cut ${cut + 1}`);
    }
    const tunnel: TunnelFigures = {
      drops: DROPS,
      outcomes: await load.stop(),
      workloadRestarts: await restartedSince(stack.engine, before),
      resumeMs,
      rssMiB: { agentBefore: mib(rssBefore.agent), agentAfter: mib(stack.agent.rss()), gatewayBefore: mib(rssBefore.gateway), gatewayAfter: mib(stack.gateway.rss()) },
    };
    load = startLoad(url, { authorization: `Bearer ${SK}` }, 'ok');
    await settle(2_000);
    const gwResume: number[] = [];
    const stops: Array<{ at: number; upAt: number }> = [];
    for (let i = 1; i <= GATEWAY_RESTARTS; i++) {
      const t = Date.now();
      await stack.restartGateway('SIGTERM');
      stops.push({ at: t, upAt: Date.now() });
      gwResume.push((await resumed(load, Date.now(), `traffic after gateway restart ${i}`)) - t);
      log(`  gateway restart ${i}/${GATEWAY_RESTARTS}: traffic back after ${gwResume.at(-1)} ms; ${JSON.stringify(load.outcomes)}`);
      await settle(prng.int(1_000, 3_000));
    }
    const gatewayOutcomes = await load.stop();
    for (const f of load.failureTimes) {
      const i = stops.filter((x) => x.at <= f.at).length - 1;
      const stop = stops[i];
      log(`  failure ${f.what}: sent ${stop === undefined ? '?' : f.sentAt - stop.at} ms and ended ${stop === undefined ? '?' : f.at - stop.at} ms after SIGTERM ${i + 1} (the new gateway was up ${stop === undefined ? '?' : stop.upAt - stop.at} ms after it)`);
    }
    const gateway: GatewayFigures = { restarts: GATEWAY_RESTARTS, outcomes: gatewayOutcomes, workloadRestarts: await restartedSince(stack.engine, before), resumeMs: gwResume };
    return { tunnel, gateway };
  } finally {
    await stack.cleanup();
  }
}

export { failureCount };
