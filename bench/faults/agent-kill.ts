import { Prng } from '../../test/helpers/prng.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import { fingerprints, restartedSince, type Ctr } from './rig.js';
import { serviceBody, startStack, type Stack } from './stack.js';

export const KILLS = 20;
const SLUGS = ['fk-a', 'fk-b', 'fk-c', 'fk-d'];

interface Svc {
  id: string;
  replicas: number;
  generation: number;
  deployed: boolean;
  /** spec-hash of its containers before an update this round (converged means: a new one). */
  oldSpec: string | undefined;
}

export interface KillFigures {
  seed: number;
  kills: number;
  duplicates: number;
  orphans: number;
  readyRestarts: number;
  /** Kills after which the system had not converged within the bound. */
  unconverged: number;
  convergeMs: number[];
  actions: Record<string, number>;
}

/** Duplicate (slug, index) pairs and containers not desired, over our containers. */
function audit(ctrs: Ctr[], svcs: Map<string, Svc>): { duplicates: number; orphans: number } {
  const seen = new Map<string, number>();
  let orphans = 0;
  for (const c of ctrs) {
    const s = [...svcs.values()].find((v) => v.id === c.serviceId);
    if (!s || !s.deployed || c.index < 0 || c.index >= s.replicas) orphans++;
    else seen.set(`${c.serviceId}/${c.index}`, (seen.get(`${c.serviceId}/${c.index}`) ?? 0) + 1);
  }
  return { duplicates: [...seen.values()].reduce((a, n) => a + (n - 1), 0), orphans };
}

/** Converged: every deployed service running on the gateway with its replicas ready, and the engine holding exactly those containers. */
async function converged(stack: Stack, svcs: Map<string, Svc>): Promise<boolean> {
  const ctrs = await stack.ours();
  const a = audit(ctrs, svcs);
  if (a.duplicates > 0 || a.orphans > 0) return false;
  for (const [slug, s] of svcs) {
    if (!s.deployed) continue;
    const mine = ctrs.filter((c) => c.serviceId === s.id);
    if (mine.length !== s.replicas || mine.some((c) => c.state !== 'running')) return false;
    if (new Set(mine.map((c) => c.spec)).size !== 1 || (s.oldSpec !== undefined && mine[0]?.spec === s.oldSpec)) return false;
    const r = await stack.runtime(slug);
    if (r.service_status !== 'running' || r.status_detail?.ready_replicas !== s.replicas) return false;
  }
  return true;
}

/** Ids of the ready replicas of every deployed service except `touched`, by the gateway's per-replica phases. */
async function readyUntouched(stack: Stack, svcs: Map<string, Svc>, touched: string): Promise<string[]> {
  const ctrs = await stack.ours();
  const ids: string[] = [];
  for (const [slug, s] of svcs) {
    if (!s.deployed || slug === touched) continue;
    const replicas = (await stack.runtime(slug)).status_detail?.agents.flatMap((a) => a.replicas) ?? [];
    for (const r of replicas.filter((x) => x.phase === 'ready')) {
      const c = ctrs.filter((x) => x.serviceId === s.id && x.index === r.index && x.state === 'running');
      if (c.length === 1) ids.push(c[0]!.id);
    }
  }
  return ids;
}

/**
 * The agent SIGKILLed KILLS times, each at a random moment (0–2.5 s) after a random change
 * (deploy, rolling update, scale, undeploy), then started again on the same state dir.
 */
export async function agentKillScenario(seed: number, log: (s: string) => void): Promise<KillFigures> {
  const prng = new Prng(seed);
  const stack = await startStack('kill');
  const svcs = new Map<string, Svc>();
  const f: KillFigures = { seed, kills: 0, duplicates: 0, orphans: 0, readyRestarts: 0, unconverged: 0, convergeMs: [], actions: {} };
  try {
    for (const slug of SLUGS) {
      const created = await stack.api.create(serviceBody(slug, 1));
      if (created.status !== 200) throw new Error(`create ${slug}: ${created.status}`);
      svcs.set(slug, { id: created.body.id, replicas: 1, generation: 0, deployed: false, oldSpec: undefined });
    }
    const first = svcs.get(SLUGS[0]!)!;
    await stack.api.update(first.id, { replica_count: 2 });
    first.replicas = 2;
    await stack.api.deploy(first.id);
    first.deployed = true;
    await stack.waitRunning(SLUGS[0]!, 2, 90_000);
    for (let k = 1; k <= KILLS; k++) {
      const deployed = [...svcs].filter(([, s]) => s.deployed);
      const idle = [...svcs].filter(([, s]) => !s.deployed);
      const choices = [...(idle.length > 0 ? ['deploy', 'deploy'] : []), ...(deployed.length > 0 ? ['update', 'update', 'scale'] : []), ...(deployed.length > 1 ? ['undeploy'] : [])];
      const action = prng.pick(choices);
      const [slug, s] = prng.pick(action === 'deploy' ? idle : deployed);
      const before = await fingerprints(stack.engine, await readyUntouched(stack, svcs, slug));
      s.oldSpec = undefined;
      if (action === 'deploy') {
        s.replicas = prng.int(1, 3);
        await stack.api.update(s.id, { replica_count: s.replicas });
        await stack.api.deploy(s.id);
        s.deployed = true;
      } else if (action === 'update') {
        s.oldSpec = (await stack.ours()).find((c) => c.serviceId === s.id)?.spec;
        s.generation++;
        await stack.api.update(s.id, { env_config: [{ env_name: 'GENERATION', env_value: String(s.generation) }] });
      } else if (action === 'scale') {
        s.replicas = s.replicas === 1 ? prng.int(2, 3) : prng.int(1, s.replicas - 1);
        await stack.api.update(s.id, { replica_count: s.replicas });
      } else {
        await stack.api.undeploy(s.id);
        s.deployed = false;
      }
      f.actions[action] = (f.actions[action] ?? 0) + 1;
      const delay = prng.int(0, 2500);
      await new Promise((r) => setTimeout(r, delay));
      await stack.agent.stop('SIGKILL');
      f.kills++;
      stack.agent = stack.startAgent();
      const t0 = Date.now();
      const ok = await waitFor('convergence', () => converged(stack, svcs), 60_000, 200).then(() => true, () => false);
      if (ok) f.convergeMs.push(Date.now() - t0);
      else f.unconverged++;
      const a = audit(await stack.ours(), svcs);
      const restarted = await restartedSince(stack.engine, before);
      f.duplicates += a.duplicates;
      f.orphans += a.orphans;
      f.readyRestarts += restarted;
      log(`  kill ${k}/${KILLS}: ${action} ${slug}, killed after ${delay} ms; ${ok ? `converged in ${Date.now() - t0} ms` : 'NOT converged in 60 s'}; duplicates ${a.duplicates}, orphans ${a.orphans}, ready replicas restarted ${restarted}/${before.size}`);
    }
  } finally {
    await stack.cleanup();
  }
  return f;
}
