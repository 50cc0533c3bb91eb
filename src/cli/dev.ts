import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Agent } from '../agent.js';
import { loadConfig } from '../config/load-config.js';
import { startGateway } from '../gateway/gateway-server.js';
import { loadApiKeys } from '../gateway/key-files.js';
import { generateKey } from '../gateway/key-material.js';
import { createLogger } from '../log.js';
import { ErrorCodes, errorMessage, isAgentError } from '../errors.js';
import type { CliCommand, CliIo } from './io.js';
import { printConfigError } from './config-errors.js';
import { waitForSignal } from './signals.js';
import { demoImage } from './dev-hint.js';
import { parseCommandArgs, parsePort } from './args.js';

const USAGE = `usage: cyberun-agent dev [--port N] [--data-dir D] [agent flags…]

Runs the local gateway and one agent in one process on the local Docker Engine: the whole Cyberun
path on one machine. The API key is CYBERUN_GATEWAY_API_KEYS when set, else generated on first
start into <data-dir>/gateway/api-keys; it is printed on every start (the gateway listens on
loopback only). Agent flags are those of "run".
  --port N        gateway port (default 8080)
  --data-dir D    gateway data and agent state (default ./.cyberun-dev)
`;

/** Gateway + agent wiring shared by `dev` and tests: returns a stop function. */
export async function startDev(options: { port: number; dataDir: string; agentArgs: string[]; io: CliIo }): Promise<{
  apiUrl: string;
  apiKey: string;
  generated: boolean;
  /** Tags of the images the engine has (for the hint). */
  imageTags: () => Promise<string[]>;
  stop: () => Promise<void>;
}> {
  const { io, dataDir } = options;
  const gatewayDir = path.join(dataDir, 'gateway');
  await mkdir(gatewayDir, { recursive: true, mode: 0o700 });
  const api = await loadApiKeys(io.env, gatewayDir);
  // The embedded agent's key never leaves the process, and is issued for its agent id only.
  const agentKey = generateKey('ak-');
  const loaded = await loadConfig({
    argv: options.agentArgs,
    env: { ...io.env, CYBERUN_AGENT_KEY: agentKey, CYBERUN_GATEWAY_URL: 'ws://127.0.0.1:1/placeholder', CYBERUN_STATE_DIR: io.env['CYBERUN_STATE_DIR'] ?? path.join(dataDir, 'agent') },
    cwd: io.cwd,
    extraEnvKeys: ['CYBERUN_GATEWAY_API_KEYS', 'CYBERUN_GATEWAY_AGENT_KEYS'],
  });
  const logger = createLogger({ level: loaded.config.logLevel });
  const gateway = await startGateway({
    host: '127.0.0.1',
    port: options.port,
    dataDir: gatewayDir,
    apiKeys: api.keys,
    agentKeys: [{ key: agentKey, agentId: loaded.config.agentId }],
    logger: logger.child({ role: 'gateway' }),
  });
  let agent: Agent;
  try {
    agent = await Agent.start({ config: { ...loaded.config, gatewayUrl: gateway.agentUrl }, logger });
  } catch (err) {
    await gateway.close();
    throw err;
  }
  return {
    apiUrl: `${gateway.url}/api/v1`,
    apiKey: api.generated ?? api.keys[0] ?? '',
    generated: api.generated !== undefined,
    imageTags: async () => (await agent.runtime.listImages().catch(() => [])).flatMap((i) => i.repoTags),
    stop: async () => {
      await agent.stop();
      await gateway.close();
    },
  };
}

/** `cyberun-agent dev`: gateway + agent in one process (what `npm start` runs). */
export const devCommand: CliCommand = async (args, io) => {
  // Flags other than dev's own are the agent's (as for run), handed to the config loader.
  const parsed = parseCommandArgs(args, { port: { type: 'string' }, 'data-dir': { type: 'string' } }, true);
  if (!parsed.ok) {
    io.stderr.write(`cyberun-agent dev: ${parsed.problem}\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const port = parsePort(parsed.values.port ?? '8080');
  if (port === undefined) {
    io.stderr.write(`cyberun-agent dev: --port "${parsed.values.port ?? ''}" must be an integer from 0 to 65535\n`);
    return 2;
  }
  const dataDir = path.resolve(io.cwd, parsed.values['data-dir'] ?? '.cyberun-dev');
  const agentArgs = [...parsed.rest, ...parsed.positionals];
  let dev;
  try {
    dev = await startDev({ port, dataDir, agentArgs, io });
  } catch (err) {
    if (isAgentError(err, ErrorCodes.CONFIG_INVALID)) return printConfigError(err, io);
    io.stderr.write(`cyberun-agent dev: ${errorMessage(err)}\n`);
    return 1;
  }
  const key = dev.apiKey;
  const keyFile = path.join(dataDir, 'gateway', 'api-keys');
  const from = dev.generated ? `generated now, stored in ${keyFile}` : io.env['CYBERUN_GATEWAY_API_KEYS'] ? 'from CYBERUN_GATEWAY_API_KEYS' : `from ${keyFile}`;
  const demo = demoImage(await dev.imageTags());
  const image = demo?.image ?? '<an image on this engine>';
  const demoPort = demo?.port ?? '<the port it serves on>';
  // The dev gateway listens on loopback only: the key is printed on every start, not only the first.
  io.stderr.write(
    `\ncyberun-agent dev: gateway + agent running on the local Docker Engine.\n` +
      `  API:      ${dev.apiUrl}\n` +
      `  API key:  ${key}   (${from})\n` +
      `\nDeploy something:\n` +
      (demo === undefined
        ? `  (this engine has no image yet: \`docker pull nginx:alpine\` where a registry is reachable, or build the\n` +
          `   project's test image without one: sh .ci/build-test-images.sh, then use cyberun-test/busybox-http:1 on port 8080)\n`
        : '') +
      `  curl -s -X POST ${dev.apiUrl}/containers -H 'Authorization: Bearer ${key}' -H 'Content-Type: application/json' \\\n` +
      `    -d '{"service_slug":"hello","display_name":"Hello","docker_image":"${image}","exposed_port":${demoPort}}'\n` +
      `  curl -s -X POST ${dev.apiUrl}/containers/<id>/deploy -H 'Authorization: Bearer ${key}'\n` +
      `  curl -s ${dev.apiUrl}/r/containers/hello -H 'Authorization: Bearer ${key}'\n\n`,
  );
  await waitForSignal();
  io.stderr.write('cyberun-agent dev: stopping (containers keep running)\n');
  await dev.stop();
  return 0;
};
