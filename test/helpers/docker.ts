import { request } from 'node:http';

/**
 * Engine access for integration and e2e tests.
 *
 * Where no Docker Engine answers, `requireDocker()` returns false and prints a LOUD notice so the
 * skip is never silent; when `CI` is set it throws instead, because a CI run that skipped its
 * integration tests proves nothing. Typical use:
 *
 *   const docker = await requireDocker();
 *   describe.skipIf(!docker)('…', () => { … });
 */

export const DOCKER_SOCKET = process.env['CYBERUN_TEST_DOCKER_SOCKET'] ?? '/var/run/docker.sock';
/** Label carried by every container a test creates, valued with the run id; see sweepTestContainers. */
export const TEST_RUN_LABEL = 'cloud.cyberun.test-run';

interface EngineAnswer {
  status: number;
  body: string;
}

/** A minimal Engine API call over the socket (test plumbing only; the agent uses DockerRuntime). */
export function engineCall(method: string, path: string, timeoutMs = 10_000): Promise<EngineAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: DOCKER_SOCKET, method, path, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** True when the engine at DOCKER_SOCKET answers /_ping within 3 s. */
export async function dockerAvailable(): Promise<boolean> {
  try {
    const answer = await engineCall('GET', '/_ping', 3_000);
    return answer.status === 200;
  } catch {
    return false;
  }
}

/**
 * True when an engine is reachable. Otherwise: throws when `CI` is set, else prints a loud notice
 * naming the suite and returns false (the caller skips).
 */
export async function requireDocker(suite = 'integration tests'): Promise<boolean> {
  if (await dockerAvailable()) return true;
  const reason = `no Docker Engine answers at ${DOCKER_SOCKET}`;
  if (process.env['CI'] !== undefined && process.env['CI'] !== '' && process.env['CI'] !== 'false') {
    throw new Error(`${suite}: ${reason}, and CI is set: refusing to skip. Start dockerd (see .ci/run).`);
  }
  const bar = '!'.repeat(78);
  process.stderr.write(`\n${bar}\n!! SKIPPING ${suite}: ${reason}.\n!! Start dockerd (see .ci/run) to run them. With CI set they fail instead.\n${bar}\n\n`);
  return false;
}

/** A fresh id for one test run's containers. */
export function newTestRunId(prefix = 'run'): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Removes (force) every container labelled `cloud.cyberun.test-run=<runId>`; returns how many. */
export async function sweepTestContainers(runId: string): Promise<number> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`${TEST_RUN_LABEL}=${runId}`] }));
  const list = await engineCall('GET', `/containers/json?all=true&filters=${filters}`);
  if (list.status !== 200) throw new Error(`listing test containers failed: ${list.status} ${list.body}`);
  const containers = JSON.parse(list.body) as Array<{ Id: string }>;
  await Promise.all(
    containers.map(async (c) => {
      const removed = await engineCall('DELETE', `/containers/${c.Id}?force=true&v=true`, 30_000);
      if (removed.status !== 204 && removed.status !== 404) throw new Error(`removing test container ${c.Id} failed: ${removed.status} ${removed.body}`);
    }),
  );
  return containers.length;
}

/** Removes a network by name; a missing one is fine. */
export async function removeTestNetwork(name: string): Promise<void> {
  const answer = await engineCall('DELETE', `/networks/${encodeURIComponent(name)}`);
  if (answer.status !== 204 && answer.status !== 404) throw new Error(`removing network ${name} failed: ${answer.status} ${answer.body}`);
}
