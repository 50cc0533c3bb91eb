import { adminCall } from '../admin/admin-client.js';
import { describeAdminAddress } from '../config/admin-listen.js';
import { errorMessage } from '../errors.js';
import { SLUG_PATTERN } from '../service-definition/field-checks.js';
import { parseCommandArgs } from './args.js';
import type { CliCommand } from './io.js';
import { resolveAdminAddress } from './status.js';

const USAGE = `usage: cyberun-agent retry <service_slug> [--admin <socket|host:port>] [config flags]

Tries the failed replicas of a service again now, as a deploy of the service on the gateway does:
its crash loop and any failure before a container ran (an image that did not pull, a start the
engine refused) are forgotten, restart counts stay. Talks to the running agent's admin endpoint.
Exit status: 0 retried, 1 the agent did not answer or does not hold the service, 2 usage.
`;

/** `cyberun-agent retry <slug>`: POST /services/{slug}/retry on the admin endpoint. */
export const retryCommand: CliCommand = async (args, io) => {
  const [slug, ...flags] = args;
  if (slug === '-h' || slug === '--help') {
    io.stdout.write(USAGE);
    return 0;
  }
  if (slug === undefined || !SLUG_PATTERN.test(slug)) {
    io.stderr.write(`cyberun-agent retry: give the service_slug first${slug === undefined ? '' : ` (${JSON.stringify(slug)} is not one)`}\n${USAGE}`);
    return 2;
  }
  // Flags it does not know are the agent's configuration flags (--config, --state-dir, --set …).
  const parsed = parseCommandArgs(flags, { admin: { type: 'string' } }, true);
  if (!parsed.ok) {
    io.stderr.write(`cyberun-agent retry: ${parsed.problem}\n${USAGE}`);
    return 2;
  }
  const address = await resolveAdminAddress('retry', parsed.values.admin, parsed.rest, io);
  if (typeof address === 'number') return address;
  if (address.kind === 'off') {
    io.stderr.write('cyberun-agent retry: the admin endpoint is off (admin.listen: off); enable it to use retry\n');
    return 1;
  }
  try {
    const answer = await adminCall(address, 'POST', `/services/${slug}/retry`);
    if (answer.status === 200) {
      io.stdout.write(`retrying the failed replicas of ${slug}; follow them with: cyberun-agent status\n`);
      return 0;
    }
    const problem = (JSON.parse(answer.body) as { error?: string }).error ?? answer.body;
    io.stderr.write(`cyberun-agent retry: ${describeAdminAddress(address)}: ${problem}\n`);
    return 1;
  } catch (err) {
    io.stderr.write(`cyberun-agent retry: ${errorMessage(err)}\n`);
    return 1;
  }
};
