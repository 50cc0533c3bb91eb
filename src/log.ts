import { fstatSync } from 'node:fs';
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths pino censors in every log line. Keys anywhere they can carry a secret: the agent key,
 * credentials, Authorization headers, and env values of service definitions (which often hold
 * tokens). Add here, never strip by hand at call sites.
 */
export const REDACT_PATHS = [
  'agent_key',
  'agentKey',
  '*.agent_key',
  '*.agentKey',
  'credential',
  '*.credential',
  'token',
  '*.token',
  'password',
  '*.password',
  'authorization',
  'Authorization',
  '*.authorization',
  '*.Authorization',
  'headers.authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  'env_config[*].env_value',
  '*.env_config[*].env_value',
  'spec.env_config[*].env_value',
  'Env',
  '*.Env',
];

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Where JSON lines go; stdout (journald-friendly) by default. Tests pass a stream. */
  destination?: DestinationStream;
  name?: string;
}

/** syslog priority per pino level, as journald reads it from a `<N>` line prefix. */
const JOURNAL_PRIORITY: Record<string, number> = { fatal: 2, error: 3, warn: 4, info: 6, debug: 7, trace: 7 };
const LEVEL_AT_START = /^\{"level":"([a-z]+)"/;

/**
 * True when fd 1 is the journal's stdout stream: systemd sets JOURNAL_STREAM=<dev>:<inode> of the
 * stream it connected; a pipe or file the process was redirected to has another one (systemd.exec(5)).
 */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const stream = env['JOURNAL_STREAM'];
  if (stream === undefined || stream === '') return false;
  try {
    const st = fstatSync(1);
    return stream === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

/**
 * Prefixes a JSON log line with `<N>`, its level's syslog priority: journald strips the prefix
 * (SyslogLevelPrefix=, on by default) and stores it as PRIORITY, so `journalctl -p warning` works.
 */
export function withJournalPriority(line: string): string {
  const level = LEVEL_AT_START.exec(line)?.[1];
  const priority = level === undefined ? undefined : JOURNAL_PRIORITY[level];
  return priority === undefined ? line : `<${priority}>${line}`;
}

/** The one pino root. Components receive child loggers from the composition root. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const journal = options.destination === undefined && stdoutIsJournal();
  return pino(
    {
      name: options.name ?? 'cyberun-agent',
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      ...(journal ? { hooks: { streamWrite: withJournalPriority } } : {}),
    },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** A logger that writes nothing, for tests and library callers that pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
