import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { errorMessage } from '../errors.js';
import { parseDuration } from '../config/config-units.js';
import { parseCommandArgs, parsePort } from './args.js';
import { startGateway } from '../gateway/gateway-server.js';
import { issueAgentKey, loadAgentKeys, loadApiKeys, sharedKeyWarning } from '../gateway/key-files.js';
import { createLogger, type Logger } from '../log.js';
import type { CliCommand, CliIo } from './io.js';
import { waitForSignal } from './signals.js';

const USAGE = `usage: cyberun-agent gateway [--port N] [--host H] [--data-dir D] [--disconnect-grace T]
       cyberun-agent gateway issue-agent-key <agent-id> [--data-dir D]

Runs the local Cyberun gateway (container REST API + agent endpoint) until SIGINT/SIGTERM.
  --port N        listen port (default 8080; 0 = any free port)
  --host H        listen address (default 127.0.0.1)
  --data-dir D    where definitions and keys live (default ./.cyberun-gateway)
  --disconnect-grace T
                  how long an agent whose tunnel dropped keeps its services before they are
                  placed on other agents (default 2m; 0 = at once)
issue-agent-key <agent-id> appends a new key for that agent to D/agent-keys and prints it on
stdout (restart the gateway to apply it). A key is valid only for the agent id it is issued for.
Keys: CYBERUN_GATEWAY_API_KEYS / CYBERUN_GATEWAY_AGENT_KEYS (comma lists; agent entries
"<ak-key> <agent-id>"), else the files api-keys / agent-keys in the data dir (mode 0600, one
entry per line). api-keys gets a generated sk- key on first start.
`;

export interface GatewayCommandDeps {
  /** Resolves when the gateway should stop (default: the first SIGINT or SIGTERM). */
  waitForStop: () => Promise<void>;
  /** Default: the pino root on stdout. */
  logger?: Logger;
}

/** `cyberun-agent gateway`: the local gateway as a foreground process. */
export function createGatewayCommand(deps: GatewayCommandDeps): CliCommand {
  return async (args, io) => {
    if (args[0] === 'issue-agent-key') return issueCommand(args.slice(1), io);
    const parsed = parseArgs(args, io);
    if (typeof parsed === 'number') return parsed;
    try {
      await mkdir(parsed.dataDir, { recursive: true, mode: 0o700 });
      const api = await loadApiKeys(io.env, parsed.dataDir);
      const agent = await loadAgentKeys(io.env, parsed.dataDir);
      const shared = agent.entries.filter((e) => e.agentId === undefined).length;
      if (shared > 0) io.stderr.write(`cyberun-agent gateway: warning: ${sharedKeyWarning(shared, agent.file)}\n`);
      const gateway = await startGateway({
        host: parsed.host,
        port: parsed.port,
        dataDir: parsed.dataDir,
        apiKeys: api.keys,
        agentKeys: agent.entries,
        disconnectGraceMs: parsed.disconnectGraceMs,
        logger: deps.logger ?? createLogger({ name: 'cyberun-gateway' }),
      });
      io.stderr.write(`cyberun-agent gateway: REST API at ${gateway.url}/api/v1, agents connect to ${gateway.agentUrl}\n`);
      if (api.generated !== undefined) {
        io.stderr.write(`Generated an API key (shown once; stored in ${api.file ?? ''}):\n  ${api.generated}\n`);
      }
      if (agent.entries.length === 0) {
        io.stderr.write(
          `No agent keys yet (${agent.file ?? 'CYBERUN_GATEWAY_AGENT_KEYS'}): issue one per agent with\n` +
            `  cyberun-agent gateway issue-agent-key <agent-id> --data-dir ${parsed.dataDir}\nand restart the gateway.\n`,
        );
      }
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

/** `cyberun-agent gateway issue-agent-key <agent-id> [--data-dir D]`: prints only the key on stdout. */
async function issueCommand(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommandArgs(args, { 'data-dir': { type: 'string' } });
  if (!parsed.ok || parsed.positionals.length > 1) {
    const problem = parsed.ok ? `unexpected argument ${JSON.stringify(parsed.positionals[1])}` : parsed.problem;
    io.stderr.write(`cyberun-agent gateway issue-agent-key: ${problem}\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const agentId = parsed.positionals[0];
  const dataDir = resolve(io.cwd, parsed.values['data-dir'] ?? '.cyberun-gateway');
  if (agentId === undefined) {
    io.stderr.write(`cyberun-agent gateway issue-agent-key: name the agent id the key is for\n${USAGE}`);
    return 2;
  }
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const { key, file } = await issueAgentKey(dataDir, agentId);
    io.stdout.write(`${key}\n`);
    io.stderr.write(`Issued an agent key for ${agentId} in ${file}: restart the gateway to apply it, and give the key to that agent (agent_key_file, mode 0600).\n`);
    return 0;
  } catch (err) {
    io.stderr.write(`cyberun-agent gateway issue-agent-key: ${errorMessage(err)}\n`);
    return 1;
  }
}

export const gatewayCommand: CliCommand = createGatewayCommand({ waitForStop: async () => void (await waitForSignal()) });

function parseArgs(args: string[], io: CliIo): { port: number; host: string; dataDir: string; disconnectGraceMs: number } | number {
  const parsed = parseCommandArgs(args, { port: { type: 'string' }, host: { type: 'string' }, 'data-dir': { type: 'string' }, 'disconnect-grace': { type: 'string' } });
  if (!parsed.ok || parsed.positionals.length > 0) {
    io.stderr.write(`cyberun-agent gateway: ${parsed.ok ? `unexpected argument ${JSON.stringify(parsed.positionals[0])}` : parsed.problem}\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const { values } = parsed;
  const port = parsePort(values.port ?? '8080');
  if (port === undefined) {
    io.stderr.write(`cyberun-agent gateway: --port "${values.port ?? ''}" must be an integer from 0 to 65535\n`);
    return 2;
  }
  let disconnectGraceMs = 120_000;
  if (values['disconnect-grace'] !== undefined) {
    try {
      disconnectGraceMs = parseDuration(values['disconnect-grace']);
    } catch (err) {
      io.stderr.write(`cyberun-agent gateway: --disconnect-grace: ${errorMessage(err)}\n`);
      return 2;
    }
  }
  return { port, host: values.host ?? '127.0.0.1', dataDir: resolve(io.cwd, values['data-dir'] ?? '.cyberun-gateway'), disconnectGraceMs };
}
