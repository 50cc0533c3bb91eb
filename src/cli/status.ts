import { parseCommandArgs } from './args.js';
import { adminGet } from '../admin/admin-client.js';
import { describeAdminAddress, parseAdminListen, type AdminAddress } from '../config/admin-listen.js';
import type { AdminStatus } from '../admin/status-view.js';
import { loadConfig, parseDuration } from '../config/load-config.js';
import { errorMessage } from '../errors.js';
import { printConfigError } from './config-errors.js';
import type { CliCommand, CliIo } from './io.js';
import { renderStatus } from './status-render.js';

const USAGE = `usage: cyberun-agent status [--json] [--healthz [--wait <duration>]] [--admin <address>] [config flags…]

Asks the running agent (its local admin endpoint) what runs on this host: services, replicas,
phase, health or reason (a progress bar while pulling), GPUs, restarts, age, and the tunnel state.
  --json              print the status document as JSON
  --healthz           only check the agent has started and answers (exit 0) or not (exit 1);
                      for HEALTHCHECKs
  --wait <duration>   with --healthz: keep asking until it passes or the duration ("120s") ends;
                      the systemd unit's ExecStartPost uses it as the readiness signal
  --admin <address>   the admin endpoint: a unix socket path or 127.0.0.1:PORT. Default: found
                      from the configuration (admin.listen, else <state_dir>/admin.sock), read
                      with the same flags, env and file as "cyberun-agent run".
Exit status: 0 ok, 1 the agent did not answer, 2 usage.
`;

/** `cyberun-agent status`: a client of the admin endpoint; never talks to Docker itself. */
export const statusCommand: CliCommand = async (args, io) => {
  // Flags it does not know are the agent's configuration flags (--config, --state-dir, --set …).
  const parsed = parseCommandArgs(args, { json: { type: 'boolean' }, healthz: { type: 'boolean' }, wait: { type: 'string' }, admin: { type: 'string' } }, true);
  if (!parsed.ok) {
    io.stderr.write(`cyberun-agent status: ${parsed.problem}\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const { json = false, healthz = false, admin } = parsed.values;
  const configArgs = parsed.rest;
  let waitMs = 0;
  try {
    if (parsed.values.wait !== undefined) waitMs = parseDuration(parsed.values.wait);
  } catch (err) {
    io.stderr.write(`cyberun-agent status: --wait ${errorMessage(err)}\n`);
    return 2;
  }
  if (admin === '') {
    io.stderr.write(`cyberun-agent status: --admin needs a value\n${USAGE}`);
    return 2;
  }
  const address = await resolveAdminAddress('status', admin, configArgs, io);
  if (typeof address === 'number') return address;
  if (address.kind === 'off') {
    io.stderr.write('cyberun-agent status: the admin endpoint is off (admin.listen: off); enable it to use status\n');
    return 1;
  }
  try {
    if (healthz) {
      const deadline = Date.now() + waitMs;
      for (;;) {
        try {
          const answer = await adminGet(address, '/healthz', 3_000);
          if (answer.status !== 200) throw new Error(`/healthz answered ${answer.status} ${answer.body.trim()}`);
          io.stdout.write('ok\n');
          return 0;
        } catch (err) {
          if (Date.now() >= deadline) throw err;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    }
    const answer = await adminGet(address, '/status');
    if (answer.status !== 200) throw new Error(`${describeAdminAddress(address)} answered ${answer.status}: ${answer.body.slice(0, 200)}`);
    const status = JSON.parse(answer.body) as AdminStatus;
    io.stdout.write(json ? `${JSON.stringify(status, null, 2)}\n` : renderStatus(status));
    return 0;
  } catch (err) {
    io.stderr.write(`cyberun-agent status: ${errorMessage(err)}\n`);
    return 1;
  }
};

/**
 * The admin endpoint a client command talks to: `--admin`, else the configuration's admin.listen
 * (read with the same flags, env and file as `run`). A number is the exit code of a usage problem.
 */
export async function resolveAdminAddress(command: string, admin: string | undefined, configArgs: string[], io: CliIo): Promise<AdminAddress | number> {
  if (admin !== undefined) {
    try {
      return parseAdminListen(admin, io.cwd);
    } catch (err) {
      io.stderr.write(`cyberun-agent ${command}: --admin ${errorMessage(err)}\n`);
      return 2;
    }
  }
  try {
    const { config } = await loadConfig({ argv: configArgs, env: io.env, cwd: io.cwd });
    return parseAdminListen(config.admin.listen, config.stateDir);
  } catch (err) {
    const code = printConfigError(err, io);
    io.stderr.write(`cyberun-agent ${command}: give the admin endpoint with --admin <socket path | 127.0.0.1:PORT> to skip the configuration\n`);
    return code;
  }
}
