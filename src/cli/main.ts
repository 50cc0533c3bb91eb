import { AGENT_VERSION } from '../version.js';
import { processIo, type CliCommand, type CliIo } from './io.js';
import { validateCommand } from './validate.js';
import { configCheckCommand } from './config-check.js';
import { runCommand } from './run.js';
import { devCommand } from './dev.js';
import { gatewayCommand } from './gateway.js';
import { inventoryCommand } from './inventory.js';
import { statusCommand } from './status.js';
import { retryCommand } from './retry.js';
import { logsCommand } from './logs.js';

const HELP = `cyberun-agent ${AGENT_VERSION}: runs Cyberun container services on this host's Docker Engine

Usage:
  cyberun-agent run [flags]              run the agent daemon (tunnel to a gateway and/or --services-dir)
  cyberun-agent dev [--port N]           local gateway + agent in one process (what \`npm start\` runs)
  cyberun-agent gateway [--port N]       the local gateway alone (Cyberun container API + agent endpoint)
  cyberun-agent status [--json]          what the running agent runs: services, replicas, health, tunnel
  cyberun-agent inventory [--json]       GPUs, labels and GPU allocations of this host
  cyberun-agent retry <slug>             try a service's failed replicas again now
  cyberun-agent logs <slug> [-f]         what the service's replicas wrote (--tail N, --since T, --replica N)
  cyberun-agent validate <file|->        validate a service definition (JSON or YAML); exit 1 on errors
  cyberun-agent config check [flags]     print the effective configuration (secrets masked)
  cyberun-agent version                  print the version
  cyberun-agent help                     this text

Common flags (see docs/configuration.md for every key):
  --config <file>          cyberun-agent.yaml to read (default ./cyberun-agent.yaml, /etc/cyberun-agent/)
  --gateway-url <ws-url>   gateway agent endpoint
  --services-dir <dir>     standalone mode: a directory of service definition files
  --label <label>          extra agent label (repeatable)
  --state-dir <dir>        where desired state is kept across restarts
  --set <key.path>=<value> any other configuration key
The agent key is read from agent_key_file or CYBERUN_AGENT_KEY, never from a flag.
`;

const commands: Record<string, CliCommand> = {
  run: runCommand,
  logs: logsCommand,
  dev: devCommand,
  gateway: gatewayCommand,
  inventory: inventoryCommand,
  status: statusCommand,
  retry: retryCommand,
  validate: validateCommand,
  version: async (_args, io) => {
    io.stdout.write(`${AGENT_VERSION}\n`);
    return 0;
  },
};

/** Dispatches a command line; returns the exit code. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    io.stdout.write(HELP);
    return 0;
  }
  if (cmd === '--version' || cmd === '-v') return commands['version']!(rest, io);
  if (cmd === 'config') {
    if (rest[0] === 'check') return configCheckCommand(rest.slice(1), io);
    io.stderr.write(`cyberun-agent: unknown config subcommand ${JSON.stringify(rest[0] ?? '')}; try "cyberun-agent config check"\n`);
    return 2;
  }
  const command = commands[cmd];
  if (!command) {
    io.stderr.write(`cyberun-agent: unknown command ${JSON.stringify(cmd)}\n\n${HELP}`);
    return 2;
  }
  return command(rest, io);
}
