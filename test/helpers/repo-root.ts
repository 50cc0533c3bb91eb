import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The checkout's root directory. Helpers run from test/helpers under vitest and compiled from
 * dist-bench/test/helpers (and bench files from dist-bench/bench) under `npm run bench`, so a
 * fixed '../..' is wrong in one of the two: this walks up to the package.json instead.
 */
export const REPO_ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

/** A path inside the checkout. */
export const repoPath = (...parts: string[]): string => path.join(REPO_ROOT, ...parts);
