import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { docker, dindImage } from '../../test/helpers/dind.js';
import { TEST_RUN_LABEL } from '../../test/helpers/docker.js';
import { tempDir } from '../../test/helpers/temp-dirs.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import { failureCount, startLoad, type Outcomes } from './load.js';
import { listContainers, SK } from './rig.js';
import { serviceBody, startStack } from './stack.js';

export const DOCKERD_RESTARTS = 3;
const SLUG = 'fd-web';

export interface DockerdFigures {
  restarts: number;
  /** ms from the daemon's stop to both replicas ready again and a request answered, each restart. */
  backMs: number[];
  replicasBack: number[];
  outcomes: Outcomes;
}

/**
 * A nested engine (cyberun-test/dind, not the host's dockerd, which other work shares) whose
 * dockerd runs in a loop: `killall dockerd` is a daemon restart (containers stop with it, as
 * without live-restore). The agent on the host drives it over tcp://; a 2-replica service serves
 * through the gateway meanwhile.
 */
export async function dockerdRestartScenario(runId: string, log: (s: string) => void): Promise<DockerdFigures> {
  const image = await dindImage();
  const dataDir = await tempDir('faults-dind');
  const loop = 'mount -t tmpfs tmpfs /run; while :; do mkdir -p /run/docker; rm -f /var/run/docker.pid /var/run/docker.sock; dockerd --host=tcp://0.0.0.0:2375 --host=unix:///var/run/docker.sock --tls=false >/dev/null 2>&1; sleep 1; done';
  const id = await docker(['run', '-d', '--label', `${TEST_RUN_LABEL}=${runId}`, '--cap-add=ALL', '--cap-drop=SYS_RESOURCE',
    '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined', '--security-opt', 'systempaths=unconfined',
    '--device-cgroup-rule=a *:* rwm', '-v', '/sys/fs/cgroup:/sys/fs/cgroup', '-v', `${dataDir}:/var/lib/docker`, '--entrypoint', '/bin/sh', image, '-c', loop]);
  try {
    const ip = await docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', id]);
    const engine = { host: ip, port: 2375 };
    await waitFor('nested dockerd answering', () => listContainers(engine, 'x').then(() => true), 60_000, 250);
    await new Promise<void>((resolve, reject) => {
      const save = spawn('docker', ['save', 'cyberun-test/busybox-http:1'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const load = spawn('docker', ['load', '-q'], { env: { ...process.env, DOCKER_HOST: `tcp://${ip}:2375` }, stdio: ['pipe', 'ignore', 'inherit'] });
      save.stdout.pipe(load.stdin);
      load.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`docker load into the nested engine exited ${code}`))));
    });
    const stack = await startStack('dockerd', { engine, network: 'cyberun-faults', agentExtra: ['--docker-host', `tcp://${ip}:2375`, '--set', 'docker.addressing=auto'] });
    try {
      const created = await stack.api.create(serviceBody(SLUG, 2));
      await stack.api.deploy(created.body.id);
      await stack.waitRunning(SLUG, 2, 90_000);
      const load = startLoad(`${stack.gateway.url}/api/v1/r/containers/${SLUG}/health`, { authorization: `Bearer ${SK}` }, 'ok');
      const f: DockerdFigures = { restarts: DOCKERD_RESTARTS, backMs: [], replicasBack: [], outcomes: load.outcomes };
      for (let i = 1; i <= DOCKERD_RESTARTS; i++) {
        await waitFor('traffic', () => load.lastAnsweredAt > Date.now() - 1_000, 30_000, 50);
        const t = Date.now();
        await docker(['exec', id, '/bin/busybox', 'killall', '-TERM', 'dockerd']);
        await waitFor('the nested dockerd down', () => listContainers(engine, 'x').then(() => false, () => true), 60_000, 100);
        const ctrs = await stack.waitRunning(SLUG, 2, 120_000).catch(() => []);
        const answered = await waitFor('a request answered after the restart', () => load.lastAnsweredAt > t, 60_000, 50).then(() => load.lastAnsweredAt, () => undefined);
        f.replicasBack.push(ctrs.length);
        f.backMs.push(answered === undefined || ctrs.length !== 2 ? Number.NaN : Date.now() - t);
        log(`  dockerd restart ${i}/${DOCKERD_RESTARTS}: ${ctrs.length}/2 replicas back and serving after ${f.backMs.at(-1)} ms; ${JSON.stringify(load.outcomes)}`);
      }
      f.outcomes = await load.stop();
      return f;
    } finally {
      await stack.cleanup();
    }
  } finally {
    await docker(['rm', '-f', '-v', id]).catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

export { failureCount };
