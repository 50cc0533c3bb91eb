import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Reconciler } from '../../src/reconcile/reconciler.js';
import type { ObservedContainer } from '../../src/domain/observed-container.js';
import { waitFor } from '../helpers/wait-for.js';
import { FakeRuntime } from '../helpers/fake-runtime.js';
import { componentReconciler } from '../helpers/reconciler-harness.js';
import { testDefinition } from '../helpers/test-definition.js';

/** A health endpoint that answers 200 and counts the probes it got. */
async function healthServer(): Promise<{ server: Server; port: number; hits: () => number }> {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, hits: () => hits };
}

/**
 * Each container gets the health server of its creation order (the first container the first
 * server, …), and observation (list/inspect) can be held, which freezes the service worker
 * between two passes while the prober keeps running.
 */
class GatedRuntime extends FakeRuntime {
  private readonly ports = new Map<string, number>();
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;

  constructor(private readonly serverPorts: number[]) {
    super();
  }

  hold(): void {
    this.gate ??= new Promise((r) => {
      this.open = r;
    });
  }

  release(): void {
    this.open?.();
    this.gate = undefined;
  }

  override async listContainers(labels: Record<string, string>): Promise<ObservedContainer[]> {
    await this.gate;
    return super.listContainers(labels);
  }

  override async inspectContainer(id: string): Promise<ObservedContainer | undefined> {
    await this.gate;
    return super.inspectContainer(id);
  }

  override replicaEndpoint(c: ObservedContainer): { host: string; port: number } | undefined {
    if (!this.ports.has(c.id)) this.ports.set(c.id, this.serverPorts[this.ports.size] ?? 1);
    return { host: '127.0.0.1', port: this.ports.get(c.id) as number };
  }
}

describe('reconciler: where traffic may go', () => {
  const servers: Server[] = [];
  let reconciler: Reconciler | undefined;

  afterEach(async () => {
    await reconciler?.stop();
    for (const s of servers.splice(0)) s.close();
  });

  it('a replacement takes traffic only once the status reports it ready; the old replica serves until then', async () => {
    const [first, second] = [await healthServer(), await healthServer()];
    servers.push(first.server, second.server);
    const runtime = new GatedRuntime([first.port, second.port]);
    const r = componentReconciler(runtime, { agentId: 'traffic-test', health: { intervalMs: 50, timeoutMs: 1_000, failureThreshold: 3 } });
    reconciler = r;
    const phaseOf = (containerId: string | undefined) => r.statusSnapshot()[0]?.replicas.find((x) => x.containerId === containerId)?.phase;
    await r.start();
    r.applyDesired([{ id: 'web', definition: testDefinition('web') }], 1, 'test');
    const [old] = await waitFor('the first replica ready', () => {
      const eps = r.readyEndpoints('web');
      return eps.length === 1 && phaseOf(eps[0]?.containerId) === 'ready' && eps;
    });

    // A new spec rolls the replica start-first. Freeze the worker once the status shows the
    // replacement starting; its health check then passes while no pass can report it ready.
    const off = r.onStatusChange((report) => {
      if (report.replicas.some((x) => x.containerId !== old?.containerId && x.phase === 'starting')) runtime.hold();
    });
    r.applyDesired([{ id: 'web', definition: testDefinition('web', { env_config: [{ env_name: 'V', env_value: '2' }] }) }], 2, 'test');
    await waitFor('the replacement passed its health check', () => second.hits() >= 2);
    off();
    const replacement = [...runtime.containers.keys()].find((id) => id !== old?.containerId);
    expect(phaseOf(replacement)).toBe('starting');
    expect(r.readyEndpoints('web').map((e) => e.containerId)).toEqual([old?.containerId]);

    runtime.release();
    await waitFor('the replacement reported ready and routed', () => phaseOf(replacement) === 'ready' && r.readyEndpoints('web').some((e) => e.containerId === replacement));
  });
});
