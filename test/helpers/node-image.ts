import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { engineCall } from './docker.js';

/** The node test service (test/fixtures/node-http/server.js): SSE, large bodies, echo. */
export const TEST_IMAGE_NODE = 'cyberun-test/node-http:1';

const BUILD_SCRIPT = fileURLToPath(new URL('../../.ci/build-node-test-image.sh', import.meta.url));

let building: Promise<void> | undefined;

/**
 * Makes sure cyberun-test/node-http:1 exists; builds it with .ci/build-node-test-image.sh (the
 * host's node binary + its libraries, `docker import`, about a second) when missing. Concurrent
 * callers in one process share one build.
 */
export async function ensureNodeTestImage(): Promise<string> {
  const present = await engineCall('GET', `/images/${TEST_IMAGE_NODE}/json`);
  if (present.status !== 200) {
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
