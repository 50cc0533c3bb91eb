import { Agent } from '../agent.js';
import { loadConfig } from '../config/load-config.js';
import { createLogger } from '../log.js';
import { isAgentError } from '../errors.js';
import type { CliCommand } from './io.js';
import { waitForSignal } from './signals.js';
import { printConfigError } from './config-errors.js';
import { reloadAgentConfig } from './reload.js';

/**
 * `cyberun-agent run [flags]`: the daemon. Runs until SIGTERM/SIGINT, then drains proxied streams
 * (shutdown.drain_timeout), closes the tunnel, stops its own loops and exits 0; containers keep
 * running and are adopted by the next start. SIGHUP reloads the configuration (see reload.ts).
 */
export const runCommand: CliCommand = async (args, io) => {
  let loaded;
  try {
    loaded = await loadConfig({ argv: args, env: io.env, cwd: io.cwd });
  } catch (err) {
    return printConfigError(err, io);
  }
  const { config } = loaded;
  const logger = createLogger({ level: config.logLevel });
  for (const w of loaded.warnings) logger.warn(w);
  let agent: Agent;
  try {
    agent = await Agent.start({ config, logger });
  } catch (err) {
    logger.fatal({ err }, 'agent could not start');
    io.stderr.write(`cyberun-agent: ${isAgentError(err) ? `${err.message} [${err.code}]` : String(err)}\n`);
    return 1;
  }
  logger.info({ agentId: config.agentId, servicesDir: config.servicesDir, gateway: config.gatewayUrl }, 'agent running');
  let reloading = Promise.resolve();
  const onHangup = (): void => {
    reloading = reloading.then(() => reloadAgentConfig(agent, { argv: args, env: io.env, cwd: io.cwd }, logger)).then(() => undefined);
  };
  process.on('SIGHUP', onHangup);
  await waitForSignal();
  process.off('SIGHUP', onHangup);
  await reloading;
  logger.info('shutting down (containers keep running)');
  await agent.stop();
  logger.flush();
  return 0;
};
