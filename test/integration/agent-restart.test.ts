import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Labels } from '../../src/domain/ownership-labels.js';
import { newTestRunId, removeTestNetwork, requireDocker } from '../helpers/docker.js';
import { ensureTestImages } from '../helpers/test-images.js';
import { tempDir } from '../helpers/agent-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { inspect, listByLabel, sweepByLabel } from '../helpers/engine.js';

const docker = await requireDocker('agent restart integration tests');
const BIN = fileURLToPath(new URL('../../bin/cyberun-agent.js', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/**
 * The agent as operators run it: a separate process (`cyberun-agent run --services-dir`), killed
 * with SIGKILL and started again. Needs `npm run build` (the test script runs it first).
 */
describe.skipIf(!docker)('agent process killed with SIGKILL and started again', () => {
  const runId = newTestRunId('restart');
  const agentId = `test-${runId}`.slice(0, 60);
  const network = `cyberun-${runId}`.slice(0, 60);
  let servicesDir: string;
  let stateDir: string;
  let child: ChildProcess | undefined;
  let output = '';

  const start = () => {
    child = spawn(process.execPath, [BIN, 'run', '--services-dir', servicesDir, '--state-dir', stateDir, '--agent-id', agentId,
      '--set', `docker.network=${network}`, '--set', 'reconcile.resync_interval=1s',
      '--set', 'health.interval=500ms', '--set', 'health.timeout=400ms', '--log-level', 'info'], {
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
  };
  const running = async (serviceId: string, n: number) => {
    const ids = await listByLabel(`${Labels.SERVICE_ID}=${serviceId}`);
    const infos = await Promise.all(ids.map((id) => inspect(id)));
    const up = infos.filter((i) => i?.State.Running);
    return up.length === n ? up : undefined;
  };
  const def = (slug: string, replicas: number) => JSON.stringify({ service_slug: slug, display_name: slug, docker_image: 'cyberun-test/busybox-http:1', replica_count: replicas });

  beforeAll(async () => {
    if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run "npm run build" first (npm test does)`);
    await ensureTestImages();
    servicesDir = await tempDir('restart-services');
    stateDir = await tempDir('restart-state');
    await writeFile(path.join(servicesDir, 'keep.json'), def('keep', 2));
    await writeFile(path.join(servicesDir, 'drop.yaml'), `service_slug: drop\ndisplay_name: drop\ndocker_image: cyberun-test/busybox-http:1\n`);
  });

  afterAll(async () => {
    child?.kill('SIGKILL');
    await sweepByLabel(`${Labels.AGENT_ID}=${agentId}`);
    await removeTestNetwork(network);
  });

  it('adopts the same running containers (IDs and StartedAt unchanged) and cleans up a service removed meanwhile', async () => {
    start();
    const kept = await waitFor('keep has 2 running containers', () => running('local-keep', 2), 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\nagent output:\n${output}`);
    });
    await waitFor('drop has 1 running container', () => running('local-drop', 1), 30_000);
    const before = new Map(kept.map((c) => [c!.Id, c!.State.StartedAt]));

    child!.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    await rm(path.join(servicesDir, 'drop.yaml'));
    output = '';
    start();

    await waitFor('drop cleaned up', async () => (await listByLabel(`${Labels.SERVICE_ID}=local-drop`)).length === 0, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\nagent output:\n${output}`);
    });
    // Give the restarted agent a few resync passes to do anything it should not.
    await new Promise((r) => setTimeout(r, 3_000));
    const after = (await running('local-keep', 2))!;
    expect(after.map((c) => c!.Id).sort()).toEqual([...before.keys()].sort());
    for (const c of after) expect(c!.State.StartedAt).toBe(before.get(c!.Id));
    expect(output).not.toMatch(/"msg":"(removing|stopping) replica[^"]*"[^\n]*local-keep/);
  });

  it('stops on SIGTERM with exit code 0 and leaves the containers running', async () => {
    const before = (await running('local-keep', 2))!;
    child!.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child!.once('exit', r));
    expect(code).toBe(0);
    const after = (await running('local-keep', 2))!;
    expect(after.map((c) => `${c!.Id}@${c!.State.StartedAt}`).sort()).toEqual(before.map((c) => `${c!.Id}@${c!.State.StartedAt}`).sort());
  });
});
