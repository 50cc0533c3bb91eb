import { appendFile, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError, ErrorCodes } from '../errors.js';
import { agentIdProblem, formatAgentKeyLine, generateKey, parseKeyList, type AgentKeyEntry } from './key-material.js';

/**
 * The gateway's key files in its data dir (docs/security.md, "Keys"):
 *
 *   api-keys     one sk-/dk- key per line; generated (one sk- key) when absent
 *   agent-keys   "<ak-key> <agent-id>" per line (a bare key: shared by every agent id);
 *                created with comments only when absent: issue keys with `issue-agent-key`
 *
 * A key file with any group or other permission bit is refused (like ssh's private keys): the
 * message names the file and the chmod that fixes it. The env lists (CYBERUN_GATEWAY_API_KEYS,
 * CYBERUN_GATEWAY_AGENT_KEYS: comma-separated entries of the same form) replace the files.
 */

export const API_KEYS_ENV = 'CYBERUN_GATEWAY_API_KEYS';
export const AGENT_KEYS_ENV = 'CYBERUN_GATEWAY_AGENT_KEYS';
export const API_KEYS_FILE = 'api-keys';
export const AGENT_KEYS_FILE = 'agent-keys';
/** Key files are small; a bigger one is not a key file. */
const MAX_KEY_FILE_BYTES = 1024 * 1024;

const AGENT_KEYS_HEADER =
  '# Agent keys of this gateway: one line per agent, "<ak-key> <agent-id>".\n' +
  '# Issue one with: cyberun-agent gateway issue-agent-key <agent-id> --data-dir <this dir>\n' +
  '# A key without an agent id is a shared key: any agent holding it may connect as any agent_id.\n';

export interface ApiKeys {
  keys: string[];
  /** The key generated on this start (shown once), if any. */
  generated: string | undefined;
  /** The file the keys came from; undefined when they came from the env. */
  file: string | undefined;
}

export interface AgentKeys {
  entries: AgentKeyEntry[];
  /** The agent-keys file was created (empty) on this start. */
  created: boolean;
  file: string | undefined;
}

/** sk-/dk- keys: the env list, else `<dataDir>/api-keys`, else a new key written there (0600). */
export async function loadApiKeys(env: Record<string, string | undefined>, dataDir: string): Promise<ApiKeys> {
  const fromEnv = env[API_KEYS_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    return { keys: parseKeyList(commaList(fromEnv), 'api', API_KEYS_ENV, 'entry').map((e) => e.key), generated: undefined, file: undefined };
  }
  const file = join(dataDir, API_KEYS_FILE);
  const text = await readKeyFile(file);
  if (text !== undefined) return { keys: parseKeyList(text, 'api', file).map((e) => e.key), generated: undefined, file };
  const key = generateKey('sk-');
  await writeFile(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
  return { keys: [key], generated: key, file };
}

/** ak- keys with their agent ids: the env list, else `<dataDir>/agent-keys` (created empty when absent). */
export async function loadAgentKeys(env: Record<string, string | undefined>, dataDir: string): Promise<AgentKeys> {
  const fromEnv = env[AGENT_KEYS_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    return { entries: parseKeyList(commaList(fromEnv), 'agent', AGENT_KEYS_ENV, 'entry'), created: false, file: undefined };
  }
  const file = join(dataDir, AGENT_KEYS_FILE);
  const text = await readKeyFile(file);
  if (text !== undefined) return { entries: parseKeyList(text, 'agent', file), created: false, file };
  await writeFile(file, AGENT_KEYS_HEADER, { mode: 0o600, flag: 'wx' });
  return { entries: [], created: true, file };
}

/**
 * Issues a new agent key for `agentId`: 32 random bytes, appended to `<dataDir>/agent-keys` as
 * `<key> <agent-id>` (the file is created 0600 when absent). A running gateway reads its keys at
 * start: restart it to apply.
 */
export async function issueAgentKey(dataDir: string, agentId: string): Promise<{ key: string; file: string }> {
  const problem = agentIdProblem(agentId);
  if (problem !== undefined) throw new AgentError(ErrorCodes.KEY_INVALID, problem);
  const file = join(dataDir, AGENT_KEYS_FILE);
  const text = await readKeyFile(file);
  // The existing entries must be valid: never append to a file the gateway would refuse.
  if (text !== undefined) parseKeyList(text, 'agent', file);
  const key = generateKey('ak-');
  const line = formatAgentKeyLine({ key, agentId });
  if (text === undefined) await writeFile(file, AGENT_KEYS_HEADER + line, { mode: 0o600, flag: 'wx' });
  else await appendFile(file, text === '' || text.endsWith('\n') ? line : `\n${line}`);
  return { key, file };
}

/**
 * A key file's text; undefined when it does not exist. Refuses (KEY_FILE_INSECURE) a file with any
 * group or other permission bit, naming the chmod to run; refuses what is not a small regular file.
 */
export async function readKeyFile(file: string): Promise<string | undefined> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AgentError(ErrorCodes.STATE_IO, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!info.isFile() || info.size > MAX_KEY_FILE_BYTES) {
    throw new AgentError(ErrorCodes.KEY_INVALID, `${file} is not a key file (a regular file of at most ${MAX_KEY_FILE_BYTES} bytes)`);
  }
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    throw new AgentError(ErrorCodes.KEY_FILE_INSECURE, `${file} has mode ${mode}: group or others may access it, so its keys are refused; run: chmod 600 ${file}`);
  }
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new AgentError(ErrorCodes.STATE_IO, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** How a shared (unbound) agent key is reported, with the fix. */
export function sharedKeyWarning(count: number, where?: string): string {
  return (
    `${count} shared agent key${count === 1 ? '' : 's'}${where === undefined ? '' : ` in ${where}`} (a key without an agent id): ` +
    'any agent holding one may connect as any agent_id and receive that agent\'s services, traffic and credentials. ' +
    'Give each agent its own key: write "<ak-key> <agent-id>" per line, or run "cyberun-agent gateway issue-agent-key <agent-id>"'
  );
}

function commaList(value: string): string {
  return value.split(',').join('\n');
}
