import { adminLines } from '../admin/admin-client.js';
import { describeAdminAddress } from '../config/admin-listen.js';
import { logQueryParams, parseLogQuery } from '../domain/log-entry.js';
import { errorMessage } from '../errors.js';
import { SLUG_PATTERN } from '../service-definition/field-checks.js';
import { parseCommandArgs } from './args.js';
import type { CliCommand } from './io.js';
import { resolveAdminAddress } from './status.js';

const USAGE = `usage: cyberun-agent logs <service_slug> [-f|--follow] [--tail N] [--since TIME] [--replica N] [--timestamps]
                          [--admin <socket|host:port>] [config flags]

Prints what the service's replicas on this host wrote (stdout to stdout, stderr to stderr), each
line prefixed with the replica ("<slug>-<index> | "), oldest first. --tail: the last N lines of
each replica (default 100, at most 10000); --since: RFC 3339 or unix seconds; -f: keep printing
what they write until interrupted. Talks to the running agent's admin endpoint.
Exit status: 0 done, 1 the agent did not answer or does not hold the service, 2 usage.
`;

/** `cyberun-agent logs <slug>`: GET /services/{slug}/logs on the admin endpoint, printed as lines. */
export const logsCommand: CliCommand = async (args, io) => {
  const [slug, ...flags] = args;
  if (slug === '-h' || slug === '--help') {
    io.stdout.write(USAGE);
    return 0;
  }
  if (slug === undefined || !SLUG_PATTERN.test(slug)) {
    io.stderr.write(`cyberun-agent logs: give the service_slug first${slug === undefined ? '' : ` (${JSON.stringify(slug)} is not one)`}\n${USAGE}`);
    return 2;
  }
  const parsed = parseCommandArgs(
    flags,
    { admin: { type: 'string' }, follow: { type: 'boolean', short: 'f' }, tail: { type: 'string' }, since: { type: 'string' }, replica: { type: 'string' }, timestamps: { type: 'boolean', short: 't' } },
    true,
  );
  if (!parsed.ok) {
    io.stderr.write(`cyberun-agent logs: ${parsed.problem}\n${USAGE}`);
    return 2;
  }
  const { values } = parsed;
  const params = new URLSearchParams();
  if (values.tail !== undefined) params.set('tail', values.tail);
  if (values.since !== undefined) params.set('since', values.since);
  if (values.replica !== undefined) params.set('replica', values.replica);
  if (values.follow === true) params.set('follow', 'true');
  const query = parseLogQuery(params);
  if (!query.ok) {
    io.stderr.write(`cyberun-agent logs: ${query.problems.map((p) => p.replace(/^(tail|since|replica) /, '--$1 ')).join('; ')}\n`);
    return 2;
  }
  const address = await resolveAdminAddress('logs', values.admin, parsed.rest, io);
  if (typeof address === 'number') return address;
  if (address.kind === 'off') {
    io.stderr.write('cyberun-agent logs: the admin endpoint is off (admin.listen: off); enable it to use logs\n');
    return 1;
  }
  const print = (text: string): void => {
    try {
      const e = JSON.parse(text) as { replica_index: number; stream: string; time: string; line: string };
      const out = `${slug}-${e.replica_index} | ${values.timestamps === true && e.time !== '' ? `${e.time} ` : ''}${e.line}\n`;
      (e.stream === 'stderr' ? io.stderr : io.stdout).write(out);
    } catch {
      // Not a log line (an agent of another version): skipped.
    }
  };
  try {
    const answer = await adminLines(address, `/services/${slug}/logs?${logQueryParams(query.query)}`, print);
    if (answer.status === 200) return 0;
    let problem = answer.body;
    try {
      problem = (JSON.parse(answer.body) as { error?: string }).error ?? answer.body;
    } catch {
      // plain text
    }
    io.stderr.write(`cyberun-agent logs: ${describeAdminAddress(address)}: ${problem}\n`);
    return 1;
  } catch (err) {
    io.stderr.write(`cyberun-agent logs: ${errorMessage(err)}\n`);
    return 1;
  }
};
