import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CredentialErrorCodes, type CredentialErrorCode } from '../errors.js';

/** What a credential lookup answers: the Authorization value, or why not. */
export type CredentialLookup = { value: string; ttlMs: number } | { code: CredentialErrorCode; message: string };

export const CREDENTIALS_FILE = 'credentials.json';
/** How long an agent may cache a value it received. */
const TTL_MS = 5 * 60_000;

/**
 * The local gateway's credentials: `<dataDir>/credentials.json`, an object
 * `{"<credential id>": {"value": "Bearer sk-…"}}` whose `value` becomes the Authorization header
 * of requests to an external service referencing that id. The file must not be readable by group
 * or others (mode 0600); it is read on every lookup, so edits apply without a restart (agents
 * cache a value for 5 minutes). Values are never logged or listed.
 */
export class CredentialsStore {
  constructor(private readonly dataDir: string) {}

  get path(): string {
    return join(this.dataDir, CREDENTIALS_FILE);
  }

  async lookup(credentialId: string): Promise<CredentialLookup> {
    let text: string;
    try {
      const info = await stat(this.path);
      if ((info.mode & 0o077) !== 0) {
        return { code: CredentialErrorCodes.STORE_INSECURE, message: `${this.path} is readable by group or others (mode ${(info.mode & 0o777).toString(8)}): chmod 600 it` };
      }
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      return { code: CredentialErrorCodes.NOT_FOUND, message: missing ? `credential ${credentialId} is not configured (no ${this.path})` : `cannot read ${this.path}: ${(err as Error).message}` };
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      return { code: CredentialErrorCodes.STORE_INVALID, message: `${this.path} is not valid JSON` };
    }
    const entry = typeof doc === 'object' && doc !== null && Object.hasOwn(doc, credentialId) ? (doc as Record<string, unknown>)[credentialId] : undefined;
    const value = typeof entry === 'object' && entry !== null ? (entry as { value?: unknown }).value : undefined;
    if (typeof value !== 'string' || value === '') return { code: CredentialErrorCodes.NOT_FOUND, message: `credential ${credentialId} is not in ${this.path} (expected {"${credentialId}": {"value": "…"}})` };
    return { value, ttlMs: TTL_MS };
  }
}
