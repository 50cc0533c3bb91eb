import { stringify } from 'yaml';
import { loadConfig, maskedConfig, type ConfigIssue } from '../config/load-config.js';
import { ErrorCodes, errorMessage, isAgentError } from '../errors.js';
import type { CliCommand } from './io.js';

const USAGE = `Usage: cyberun-agent config check [flags]

Loads the configuration exactly as \`cyberun-agent run\` would (flags > CYBERUN_* env > file >
defaults), prints the effective configuration as YAML with each value's source as a trailing
comment (the agent key masked), and prints warnings to stderr.

Flags: --config <file>, --gateway-url, --agent-id, --agent-key-file, --label (repeatable),
--state-dir, --services-dir, --docker-host, --docker-socket, --log-level, --set <key.path>=<value>.
See docs/configuration.md.

Exit status: 0 the configuration is valid (warnings may be printed); 1 it is not, every problem
listed on stderr as "  <path>: <message>".
`;

/** `cyberun-agent config check [flags]`. Never prints the agent key. */
export const configCheckCommand: CliCommand = async (args, io) => {
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout.write(USAGE);
    return 0;
  }
  let loaded;
  try {
    loaded = await loadConfig({ argv: args, env: io.env, cwd: io.cwd });
  } catch (err) {
    if (!isAgentError(err, ErrorCodes.CONFIG_INVALID)) {
      io.stderr.write(`cyberun-agent: config check failed: ${errorMessage(err)}\n`);
      return 1;
    }
    const issues = (err.details?.['issues'] ?? []) as ConfigIssue[];
    io.stderr.write(`cyberun-agent: invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n`);
    for (const issue of issues) io.stderr.write(`  ${issue.path}: ${issue.message}\n`);
    return 1;
  }

  for (const warning of loaded.warnings) io.stderr.write(`warning: ${warning}\n`);
  const header = [
    '# cyberun-agent effective configuration',
    `# config file: ${loaded.configFile ?? 'none'}`,
    '# each value is followed by its source; the agent key is masked',
  ];
  io.stdout.write(`${[...header, ...renderYaml(maskedConfig(loaded.config), loaded.origins)].join('\n')}\n`);
  return 0;
};

/** One line per key, `key: value  # origin`; valid YAML that reads back as the same config. */
function renderYaml(values: Record<string, unknown>, origins: Record<string, string>): string[] {
  const rows: Array<[string, string]> = [];
  const walk = (obj: Record<string, unknown>, prefix: string, indent: string) => {
    for (const [key, value] of Object.entries(obj)) {
      const keyPath = prefix + key;
      if (key === 'agent_key' && prefix === '') {
        // Not a file key (the file refuses it), so shown as a comment.
        rows.push([`# agent_key: ${typeof value === 'string' ? value : '(not set)'}`, origins['agent_key'] ?? '']);
      } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        rows.push([`${indent}${key}:`, '']);
        walk(value as Record<string, unknown>, `${keyPath}.`, `${indent}  `);
      } else {
        rows.push([`${indent}${key}: ${scalar(value)}`, origins[keyPath] ?? 'default']);
      }
    }
  };
  walk(values, '', '');
  const width = Math.min(48, Math.max(...rows.map(([text, origin]) => (origin === '' ? 0 : text.length))));
  return rows.map(([text, origin]) => (origin === '' ? text : `${text.padEnd(width)}  # ${origin}`));
}

function scalar(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(scalar).join(', ')}]`;
  return stringify(value, { lineWidth: 0 }).trimEnd();
}
