/**
 * The agent key: from CYBERUN_AGENT_KEY or agent_key_file (never a flag), with the file's mode
 * judged as OpenSSH judges a private key, and its text checked. Its value never reaches a message.
 */
import { constants as fsConstants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { envNameOf } from './config-keys.js';
import type { ConfigValues } from './config-schema.js';
import { KEY_ENV, type Candidate, type ConfigIssue, type ConfigSource } from './config-layers.js';
import { fsReason } from './config-paths.js';

interface ResolvedKey {
  value: string | undefined;
  source?: ConfigSource;
  origin?: string;
}

export async function resolveAgentKey(
  c: ConfigValues,
  winners: Map<string, Candidate>,
  envKey: string | undefined,
  issues: ConfigIssue[],
  warnings: string[],
): Promise<ResolvedKey> {
  const fileWinner = winners.get('agent_key_file');
  if (envKey !== undefined && fileWinner?.source === 'env') {
    issues.push({ path: 'agent_key', message: `both ${KEY_ENV} and ${envNameOf('agent_key_file')} are set; set only one` });
    return { value: envKey };
  }
  if (envKey !== undefined && (fileWinner === undefined || fileWinner.source !== 'flag')) {
    // The env var outranks a key file named by the file or defaults, as env outranks file.
    if (checkKeyText(envKey, KEY_ENV, 'agent_key', issues, warnings)) return { value: envKey, source: 'env', origin: `env ${KEY_ENV}` };
    return { value: envKey };
  }
  if (c.agent_key_file === undefined || fileWinner === undefined) return { value: undefined };

  const file = c.agent_key_file;
  const where = `agent key file ${file} (${fileWinner.origin})`;
  let text: string;
  try {
    const info = await stat(file);
    if (!info.isFile()) {
      issues.push({ path: 'agent_key_file', message: `${where} is not a regular file; point agent_key_file at the file holding the key` });
      return { value: undefined };
    }
    if (info.size > 4096) {
      issues.push({ path: 'agent_key_file', message: `${where} is ${info.size} bytes; an agent key file holds only the key` });
      return { value: undefined };
    }
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    // As OpenSSH does with private keys: a key any user can read, or others can replace, is refused.
    // Group read alone is a warning (a root:<agent group> file some deployments use).
    if ((info.mode & 0o026) !== 0) {
      issues.push({ path: 'agent_key_file', message: `${where} is refused: other users can read or change it (mode ${mode}); run: chmod 600 ${file}` });
      return { value: undefined };
    }
    text = (await readFile(file, 'utf8')).trim();
    if ((info.mode & 0o077) !== 0) warnings.push(`agent_key_file: ${file} is readable by its group (mode ${mode}); run: chmod 600 ${file}`);
  } catch (err) {
    issues.push({ path: 'agent_key_file', message: `cannot read ${where}: ${fsReason(err)}; fix the path, or make the file readable by the agent's user` });
    return { value: undefined };
  }
  if (!checkKeyText(text, where, 'agent_key_file', issues, warnings)) return { value: text };
  return { value: text, source: fileWinner.source, origin: `${fileWinner.origin} → ${file}` };
}

/** Checks the key's shape without ever quoting it. */
function checkKeyText(key: string, where: string, at: string, issues: ConfigIssue[], warnings: string[]): boolean {
  if (key === '') {
    issues.push({ path: at, message: `${where} is empty; it must hold the ak-… key` });
    return false;
  }
  if (!/^[\x21-\x7e]+$/.test(key)) {
    issues.push({ path: at, message: `${where} holds whitespace or non-printable characters; it must hold only the key, on one line` });
    return false;
  }
  if (!key.startsWith('ak-')) warnings.push(`${at}: the key from ${where} does not start with "ak-", as agent keys do`);
  return true;
}

export async function checkReadableFile(file: string, at: string, origin: string, issues: ConfigIssue[]): Promise<void> {
  try {
    await access(file, fsConstants.R_OK);
    if (!(await stat(file)).isFile()) issues.push({ path: at, message: `${file} (${origin}) is not a regular file; name a PEM file` });
  } catch (err) {
    issues.push({ path: at, message: `cannot read ${file} (${origin}): ${fsReason(err)}; fix the path or the file's permissions` });
  }
}
