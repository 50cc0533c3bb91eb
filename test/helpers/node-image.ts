import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { engineCall } from './docker.js';
import { repoPath } from './repo-root.js';

/** The node test service (test/fixtures/node-http/server.js): SSE, large bodies, echo. */
export const TEST_IMAGE_NODE = 'cyberun-test/node-http:1';

const BUILD_SCRIPT = repoPath('.ci', 'build-node-test-image.sh');
const SERVER_JS = repoPath('test', 'fixtures', 'node-http', 'server.js');
/** The image records which server.js it holds; an image of an older one is rebuilt. */
const FIXTURE_LABEL = 'cloud.cyberun.test-fixture-sha256';

function fixtureSum(): string {
  return createHash('sha256').update(readFileSync(SERVER_JS)).digest('hex').slice(0, 16);
}

let building: Promise<void> | undefined;

/**
 * Makes sure cyberun-test/node-http:1 exists and holds the current server.js; builds it with
 * .ci/build-node-test-image.sh (the host's node binary + its libraries, `docker import`, about a
 * second) when missing or stale. Concurrent callers in one process share one build.
 */
export async function ensureNodeTestImage(): Promise<string> {
  const present = await engineCall('GET', `/images/${TEST_IMAGE_NODE}/json`);
  const labels = present.status === 200 ? (JSON.parse(present.body) as { Config?: { Labels?: Record<string, string> | null } }).Config?.Labels : undefined;
  if (labels?.[FIXTURE_LABEL] !== fixtureSum()) {
    building ??= new Promise<void>((resolve, reject) => {
      execFile('sh', [BUILD_SCRIPT], { timeout: 180_000, env: { ...process.env, TEST_IMAGE_NODE } }, (err, _stdout, stderr) => {
        if (err) reject(new Error(`building ${TEST_IMAGE_NODE} failed: ${err.message}\n${stderr}`));
        else resolve();
      });
    }).finally(() => {
      building = undefined;
    });
    await building;
  }
  return TEST_IMAGE_NODE;
}
