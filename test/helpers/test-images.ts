import { execFile } from 'node:child_process';
import { engineCall } from './docker.js';
import { repoPath } from './repo-root.js';

/** The busybox test service (see .ci/build-test-images.sh for its MODE/PORT/… env contract). */
export const TEST_IMAGE_HTTP = 'cyberun-test/busybox-http:1';

const BUILD_SCRIPT = repoPath('.ci', 'build-test-images.sh');

let building: Promise<void> | undefined;

async function imagePresent(ref: string): Promise<boolean> {
  const answer = await engineCall('GET', `/images/${ref}/json`);
  return answer.status === 200;
}

/**
 * Makes sure the test images exist on the engine and returns their references. The fast path is
 * one image inspect; a missing image is built by .ci/build-test-images.sh (docker import of a
 * busybox rootfs, well under a second). Concurrent callers in one process share one build.
 */
export async function ensureTestImages(): Promise<{ http: string }> {
  if (!(await imagePresent(TEST_IMAGE_HTTP))) {
    building ??= new Promise<void>((resolve, reject) => {
      execFile('sh', [BUILD_SCRIPT], { timeout: 120_000, env: { ...process.env, TEST_IMAGE_HTTP } }, (err, _stdout, stderr) => {
        if (err) reject(new Error(`building ${TEST_IMAGE_HTTP} failed: ${err.message}\n${stderr}`));
        else resolve();
      });
    }).finally(() => {
      building = undefined;
    });
    await building;
  }
  return { http: TEST_IMAGE_HTTP };
}
