import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AgentError, ErrorCodes, errorMessage } from '../errors.js';
import { parseDuration } from '../config/config-schema.js';
import { startGateway } from '../gateway/gateway-server.js';
import { createLogger, type Logger } from '../log.js';
import type { CliCommand, CliIo } from './io.js';
import { waitForSignal } from './signals.js';

const USAGE = `usage: cyberun-agent gateway [--port N] [--host H] [--data-dir D] [--disconnect-grace T]

Runs the local Cyberun gateway (container REST API + agent endpoint) until SIGINT/SIGTERM.
  --port N        listen port (default 8080; 0 = any free port)
  --host H        listen address (default 127.0.0.1)
  --data-dir D    where definitions and keys live (default ./.cyberun-gateway)
  --disconnect-grace T
                  how long an agent whose tunnel dropped keeps its services before they are
                  placed on other agents (default 2m; 0 = at once)
Keys: CYBERUN_GATEWAY_API_KEYS / CYBERUN_GATEWAY_AGENT_KEYS (comma lists), else the files
api-keys / agent-keys in the data dir (one key per line), generated on first start.
`;

export interface GatewayCommandDeps {
  /** Resolves when the gateway should stop (default: the first SIGINT or SIGTERM). */
  waitForStop: () => Promise<void>;
  /** Default: the pino root on stdout. */
  logger?: Logger;
}

export interface KeySource {
  keys: string[];
  generated: boolean;
  file: string | undefined;
}

/** `cyberun-agent gateway`: the local gateway as a foreground process. */
export function createGatewayCommand(deps: GatewayCommandDeps): CliCommand {
  return async (args, io) => {
    const parsed = parseArgs(args, io);
    if (typeof parsed === 'number') return parsed;
    try {
      await mkdir(parsed.dataDir, { recursive: true, mode: 0o700 });
      const api = await loadKeys(io, parsed.dataDir, 'CYBERUN_GATEWAY_API_KEYS', 'api-keys', ['sk-', 'dk-'], 'sk-');
      const agent = await loadKeys(io, parsed.dataDir, 'CYBERUN_GATEWAY_AGENT_KEYS', 'agent-keys', ['ak-'], 'ak-');
      const gateway = await startGateway({
        host: parsed.host,
        port: parsed.port,
        dataDir: parsed.dataDir,
        apiKeys: api.keys,
        agentKeys: agent.keys,
        disconnectGraceMs: parsed.disconnectGraceMs,
        logger: deps.logger ?? createLogger({ name: 'cyberun-gateway' }),
      });
      io.stderr.write(`cyberun-agent gateway: REST API at ${gateway.url}/api/v1, agents connect to ${gateway.agentUrl}\n`);
      if (api.generated) {
        io.stderr.write(`Generated an API key (shown once; stored in ${api.file ?? ''}):\n  ${api.keys[0] ?? ''}\n`);
      }
      if (agent.generated) io.stderr.write(`Generated an agent key in ${agent.file ?? ''}: give it to the agent as its agent key file.\n`);
      await deps.waitForStop();
      io.stderr.write('cyberun-agent gateway: stopping\n');
      await gateway.close();
      return 0;
    } catch (err) {
      io.stderr.write(`cyberun-agent gateway: ${errorMessage(err)}\n`);
      return 1;
    }
  };
}

export const gatewayCommand: CliCommand = createGatewayCommand({ waitForStop: async () => void (await waitForSignal()) });

function parseArgs(args: string[], io: CliIo): { port: number; host: string; dataDir: string; disconnectGraceMs: number } | number {
  let port = 8080;
  let disconnectGraceMs = 120_000;
  let host = '127.0.0.1';
  let dataDir = resolve(io.cwd, '.cyberun-gateway');
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (flag === '-h' || flag === '--help') {
      io.stdout.write(USAGE);
      return 0;
    }
    const value = inline ?? args[++i];
    if (value === undefined || !['--port', '--host', '--data-dir', '--disconnect-grace'].includes(flag)) {
      io.stderr.write(value === undefined ? `cyberun-agent gateway: ${flag} needs a value\n${USAGE}` : `cyberun-agent gateway: unknown flag ${flag}\n${USAGE}`);
      return 2;
    }
    if (flag === '--port') {
      const n = Number(value);
      if (!/^\d+$/.test(value) || n > 65535) {
        io.stderr.write(`cyberun-agent gateway: --port "${value}" must be an integer from 0 to 65535\n`);
        return 2;
      }
      port = n;
    } else if (flag === '--disconnect-grace') {
      try {
        disconnectGraceMs = parseDuration(value);
      } catch (err) {
        io.stderr.write(`cyberun-agent gateway: --disconnect-grace: ${errorMessage(err)}\n`);
        return 2;
      }
    } else if (flag === '--host') host = value;
    else dataDir = resolve(io.cwd, value);
  }
  return { port, host, dataDir, disconnectGraceMs };
}

/**
 * Keys from the env list when set, else from `<dataDir>/<fileName>` (one per line, `#` comments),
 * else a new key written there with mode 0600. Every key must carry one of `prefixes`.
 */
export async function loadKeys(io: CliIo, dataDir: string, envName: string, fileName: string, prefixes: string[], generatePrefix: string): Promise<KeySource> {
  const fromEnv = io.env[envName];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    return { keys: checkKeys(fromEnv.split(','), prefixes, envName), generated: false, file: undefined };
  }
  const file = join(dataDir, fileName);
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) {
    const mode = (await stat(file)).mode & 0o077;
    if (mode !== 0) io.stderr.write(`cyberun-agent gateway: warning: ${file} is readable by other users; chmod 600 it\n`);
    const lines = text.split('\n').filter((l) => !l.trim().startsWith('#'));
    return { keys: checkKeys(lines, prefixes, file), generated: false, file };
  }
  const key = `${generatePrefix}${randomBytes(24).toString('base64url')}`;
  await writeFile(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
  return { keys: [key], generated: true, file };
}

function checkKeys(raw: string[], prefixes: string[], where: string): string[] {
  const keys = raw.map((k) => k.trim()).filter((k) => k !== '');
  if (keys.length === 0) throw new AgentError(ErrorCodes.CONFIG_INVALID, `${where} holds no keys: add at least one (${prefixes.join(' or ')}…)`);
  const bad = keys.findIndex((k) => !prefixes.some((p) => k.startsWith(p)));
  if (bad !== -1) throw new AgentError(ErrorCodes.CONFIG_INVALID, `${where}: key #${bad + 1} must start with ${prefixes.join(' or ')}`);
  return keys;
}
