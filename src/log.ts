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

/** The one pino root. Components receive child loggers from the composition root. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? 'cyberun-agent',
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** A logger that writes nothing, for tests and library callers that pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
