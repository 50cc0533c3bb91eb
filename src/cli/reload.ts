import type { Agent } from '../agent.js';
import type { ConfigChange } from '../config/config-diff.js';
import { loadConfig, type LoadConfigInput } from '../config/load-config.js';
import { errorMessage, isAgentError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * SIGHUP: reads the configuration again exactly as at start (same argv, env, cwd: the file and the
 * key file are re-read) and applies what can change live (see LIVE_CONFIG_KEYS). Nothing restarts:
 * no container, no tunnel. An invalid configuration is logged with every problem and ignored; the
 * agent keeps the one it runs with. Returns the change, or undefined when the reload was refused.
 */
export async function reloadAgentConfig(agent: Agent, input: LoadConfigInput, logger: Logger): Promise<ConfigChange | undefined> {
  let next;
  try {
    next = await loadConfig(input);
  } catch (err) {
    const issues = isAgentError(err) && Array.isArray(err.details?.['issues']) ? err.details['issues'] : undefined;
    logger.error({ issues, error: issues ? undefined : errorMessage(err) }, 'SIGHUP: configuration invalid; keeping the running one');
    return undefined;
  }
  for (const w of next.warnings) logger.warn(w);
  const change = agent.reload(next.config);
  if (change.live.length === 0 && change.needsRestart.length === 0) logger.info('SIGHUP: configuration reloaded; nothing changed');
  else {
    logger.info({ applied: change.live, needsRestart: change.needsRestart }, 'SIGHUP: configuration reloaded');
    if (change.needsRestart.length > 0) {
      logger.warn(
        { keys: change.needsRestart },
        'SIGHUP: these keys changed but apply only after an agent restart (containers keep running across it)',
      );
    }
  }
  return change;
}
