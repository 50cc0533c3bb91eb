import { randomBytes } from 'node:crypto';
import { AgentError, ErrorCodes } from '../errors.js';

/**
 * What makes a gateway key acceptable, and how keys are written down (docs/security.md, "Keys").
 * Pure: no IO. key-files.ts reads the files; startGateway checks what it is given with the same
 * rules, so a key that passes one passes the other.
 */

/** Characters a key must carry after its prefix (`sk-`, `dk-`, `ak-`): a bare prefix is no key. */
export const MIN_KEY_SECRET_CHARS = 24;
/** Random bytes of a generated key: 43 base64url characters after the prefix. */
export const GENERATED_KEY_BYTES = 32;

export const API_KEY_PREFIXES = ['sk-', 'dk-'] as const;
export const AGENT_KEY_PREFIXES = ['ak-'] as const;

/** An agent key and the one agent id it is issued for; `agentId` undefined: a shared key. */
export interface AgentKeyEntry {
  key: string;
  agentId: string | undefined;
}

/** The agent ids agents may use (the agent's own `agent_id` rule: hostname-like). */
const AGENT_ID_RE = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** A new random key: `prefix` + 32 random bytes in base64url. */
export function generateKey(prefix: 'sk-' | 'ak-'): string {
  return `${prefix}${randomBytes(GENERATED_KEY_BYTES).toString('base64url')}`;
}

/** Why `key` is not an acceptable key with one of `prefixes`, or undefined. Never quotes the key. */
export function keyProblem(key: string, prefixes: readonly string[]): string | undefined {
  const prefix = prefixes.find((p) => key.startsWith(p));
  if (prefix === undefined) return `must start with ${prefixes.join(' or ')}`;
  if (!/^[\x21-\x7e]+$/.test(key)) return 'holds whitespace or non-printable characters';
  const secret = key.length - prefix.length;
  if (secret < MIN_KEY_SECRET_CHARS) {
    return `has ${secret} characters after "${prefix}"; keys need at least ${MIN_KEY_SECRET_CHARS} (generated keys have 43: 32 random bytes, base64url)`;
  }
  return undefined;
}

/** Throws KEY_INVALID naming `where` when `key` is not acceptable. */
export function checkKey(key: string, prefixes: readonly string[], where: string): void {
  const problem = keyProblem(key, prefixes);
  if (problem !== undefined) throw new AgentError(ErrorCodes.KEY_INVALID, `${where}: the key ${problem}`);
}

/** Why `id` cannot be an agent id, or undefined. */
export function agentIdProblem(id: string): string | undefined {
  return AGENT_ID_RE.test(id) ? undefined : `agent id "${id.slice(0, 64)}" is not hostname-like (lowercase letters, digits, "-" and ".", as the agent's agent_id)`;
}

/**
 * Parses a key list: one entry per line (`#` comments and blank lines skipped). API keys: one
 * `sk-…`/`dk-…` key per line. Agent keys: `<ak-key> <agent-id>` (whitespace between), or a bare
 * key, which is a shared key any agent may use with any agent id. `unit` names an entry in
 * messages ("line", or "entry" for a comma list). Throws KEY_INVALID naming every bad entry.
 */
export function parseKeyList(text: string, kind: 'api' | 'agent', where: string, unit = 'line'): AgentKeyEntry[] {
  const prefixes = kind === 'api' ? API_KEY_PREFIXES : AGENT_KEY_PREFIXES;
  const entries: AgentKeyEntry[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const at = `${unit} ${i + 1}`;
    const fields = line.split(/\s+/);
    const [key = '', agentId, ...extra] = fields;
    if (extra.length > 0 || (kind === 'api' && agentId !== undefined)) {
      problems.push(`${at}: expected ${kind === 'api' ? 'one key' : '"<ak-key> <agent-id>"'}, found ${fields.length} fields`);
      return;
    }
    const keyError = keyProblem(key, prefixes);
    const idError = agentId === undefined ? undefined : agentIdProblem(agentId);
    if (keyError !== undefined || idError !== undefined) {
      problems.push(`${at}: ${keyError === undefined ? idError : `the key ${keyError}`}`);
      return;
    }
    if (seen.has(key)) {
      problems.push(`${at}: the key is listed twice; a key names exactly one agent`);
      return;
    }
    seen.add(key);
    entries.push({ key, agentId });
  });
  if (problems.length > 0) throw new AgentError(ErrorCodes.KEY_INVALID, `${where}: ${problems.join('; ')}`);
  if (kind === 'api' && entries.length === 0) {
    throw new AgentError(ErrorCodes.KEY_INVALID, `${where} holds no keys: add at least one (${prefixes.join(' or ')}…)`);
  }
  return entries;
}

/** `<key> <agent-id>` lines for an agent-keys file. */
export function formatAgentKeyLine(entry: { key: string; agentId: string }): string {
  return `${entry.key} ${entry.agentId}\n`;
}
