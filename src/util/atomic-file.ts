import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { AgentError, ErrorCodes } from '../errors.js';

/**
 * Replaces `file` with `body` so that a crash at any moment leaves either the old or the new
 * content, never a torn file: write a temp file beside it (created with `mode`), fsync, rename.
 * Callers serialize their own writes. Throws STATE_IO (retryable) naming the file.
 */
export async function writeFileAtomic(file: string, body: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(tmp, 'w', mode);
    try {
      await handle.writeFile(body, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new AgentError(ErrorCodes.STATE_IO, `cannot write ${file}: ${(err as Error).message}`, { cause: err, retryable: true });
  }
}
