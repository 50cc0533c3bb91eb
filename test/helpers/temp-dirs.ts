import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const created: string[] = [];

/**
 * A fresh directory `cyberun-<prefix>-XXXXXX` under the OS temp dir. It is removed once the test
 * file is done (test/helpers/temp-dirs.setup.ts), after the file's own afterAll hooks have stopped
 * whatever used it.
 */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `cyberun-${prefix}-`));
  created.push(dir);
  return dir;
}

/** Removes every directory `tempDir` made in this test file. */
export async function removeTempDirs(): Promise<void> {
  const dirs = created.splice(0);
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true, maxRetries: 3 })));
}
