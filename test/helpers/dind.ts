import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { TEST_RUN_LABEL } from './docker.js';
import { REPO_ROOT } from './repo-root.js';
import { tempDir } from './agent-harness.js';
import { waitFor } from './wait-for.js';

/** Docker-in-docker and image-building plumbing for the dind-* integration tests (docker CLI). */

const exec = promisify(execFile);
const ROOT = REPO_ROOT;
/** Label of the agent image built by agentImage(): the content hash it was built from. */
export const CONTENT_HASH_LABEL = 'cloud.cyberun.test-content-hash';
/** The label the .ci/build-*-image.sh scripts give every test base image (and what is built on them). */
const TEST_IMAGE_LABEL = 'cloud.cyberun.test-image';

export async function docker(args: string[], timeoutMs = 120_000, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const { stdout } = await exec('docker', args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env });
  return stdout.trim();
}

async function script(name: string, timeoutMs = 300_000): Promise<string> {
  const { stdout } = await exec('sh', [path.join(ROOT, '.ci', name)], { timeout: timeoutMs, cwd: ROOT });
  return stdout.trim().split('\n').at(-1) ?? '';
}

/** The nested-engine image (.ci/build-dind-image.sh), built once per engine version. */
export const dindImage = (): Promise<string> => script('build-dind-image.sh');

/** The local Node base image (.ci/build-node-image.sh), standing in for node:20-bookworm-slim. */
export const nodeBaseImage = (): Promise<string> => script('build-node-image.sh');

export interface Dind {
  containerId: string;
  ip: string;
  /** tcp://<ip>:2375 */
  host: string;
  /** Runs the docker CLI against the nested engine. */
  docker(args: string[], timeoutMs?: number): Promise<string>;
  /** Copies an image of the host engine into the nested one (docker save | docker load). */
  loadImage(ref: string): Promise<void>;
  remove(): Promise<void>;
}

/** Starts a nested Docker Engine (no --privileged; see TEST-ENVIRONMENT.md) and waits until it answers. */
export async function startDind(runId: string): Promise<Dind> {
  const image = await dindImage();
  const dataDir = await tempDir('dind-data');
  const containerId = await docker([
    'run', '-d', '--label', `${TEST_RUN_LABEL}=${runId}`,
    '--cap-add=ALL', '--cap-drop=SYS_RESOURCE',
    '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined', '--security-opt', 'systempaths=unconfined',
    '--device-cgroup-rule=a *:* rwm', '-v', '/sys/fs/cgroup:/sys/fs/cgroup', '-v', `${dataDir}:/var/lib/docker`,
    image,
  ]);
  const ip = await docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', containerId]);
  const host = `tcp://${ip}:2375`;
  const env = { ...process.env, DOCKER_HOST: host };
  const inner = (args: string[], timeoutMs = 120_000) => docker(args, timeoutMs, env);
  const remove = async () => {
    await docker(['rm', '-f', '-v', containerId]).catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  };
  try {
    await waitFor('nested dockerd answering', () => inner(['version', '--format', '{{.Server.Version}}'], 5_000), 60_000, 500);
  } catch (err) {
    const logs = await docker(['logs', '--tail', '30', containerId]).catch(() => '');
    await remove();
    throw new Error(`${String(err)}\nnested dockerd logs:\n${logs}`);
  }
  return {
    containerId,
    ip,
    host,
    docker: inner,
    loadImage: (ref) =>
      new Promise((resolve, reject) => {
        const save = spawn('docker', ['save', ref], { stdio: ['ignore', 'pipe', 'inherit'] });
        const load = spawn('docker', ['load', '-q'], { env, stdio: ['pipe', 'ignore', 'inherit'] });
        save.stdout.pipe(load.stdin);
        save.on('error', reject);
        load.on('error', reject);
        load.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`docker load of ${ref} into ${host} exited ${code}`))));
      }),
    remove,
  };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out.sort();
}

/**
 * The project's image built from its Dockerfile on the local Node base (PREBUILT=1, staged by
 * deploy/docker/stage-context.mjs), tagged `cyberun-test/agent:<hash>`. The hash covers everything
 * that goes into the image (src, bin, package files, Dockerfile, deploy/docker, the base image id),
 * so an unchanged tree reuses the image and a changed one is rebuilt (~15 s).
 */
export async function agentImage(): Promise<string> {
  const base = await nodeBaseImage();
  const hash = createHash('sha256');
  hash.update(await docker(['image', 'inspect', '-f', '{{.Id}}', base]));
  const inputs = [
    ...(await filesUnder(path.join(ROOT, 'src'))),
    ...(await filesUnder(path.join(ROOT, 'bin'))),
    ...(await filesUnder(path.join(ROOT, 'deploy', 'docker'))),
    ...['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'Dockerfile'].map((f) => path.join(ROOT, f)),
  ];
  for (const file of inputs) {
    hash.update(path.relative(ROOT, file));
    hash.update(await readFile(file));
  }
  const digest = hash.digest('hex').slice(0, 16);
  const ref = `cyberun-test/agent:${digest}`;
  const present = await docker(['image', 'inspect', '-f', `{{index .Config.Labels "${CONTENT_HASH_LABEL}"}}`, ref]).catch(() => '');
  if (present === digest) return ref;
  const context = await tempDir('agent-image-ctx');
  try {
    await exec(process.execPath, [path.join(ROOT, 'deploy', 'docker', 'stage-context.mjs'), context], { timeout: 180_000, cwd: ROOT });
    await docker(['build', '-q', '--build-arg', 'PREBUILT=1', '--build-arg', `BASE=${base}`, '--label', `${CONTENT_HASH_LABEL}=${digest}`, '-t', ref, context], 300_000);
  } finally {
    await rm(context, { recursive: true, force: true });
  }
  // Older builds of the test image are garbage now; one still in use by a container stays. So is
  // the build stage of each build, which the classic builder leaves as an untagged image (135 MB
  // each, 22 of them after a day of test runs): untagged images that carry the test label of the
  // node base they were built on are such leftovers.
  for (const old of (await docker(['images', '--format', '{{.Repository}}:{{.Tag}}', 'cyberun-test/agent'])).split('\n')) {
    if (old !== '' && old !== ref) await docker(['rmi', old]).catch(() => undefined);
  }
  await docker(['image', 'prune', '--force', '--filter', `label=${TEST_IMAGE_LABEL}`]).catch(() => undefined);
  return ref;
}
