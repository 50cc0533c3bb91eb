import { isAgentError } from '../errors.js';
import type { CliIo } from './io.js';

/** Prints a config error (every issue with its key path) and returns the exit code 1. */
export function printConfigError(err: unknown, io: CliIo): number {
  if (isAgentError(err) && Array.isArray(err.details?.['issues'])) {
    const issues = err.details['issues'] as { path: string; message: string }[];
    io.stderr.write(`cyberun-agent: invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n`);
    for (const i of issues) io.stderr.write(`  ${i.path}: ${i.message}\n`);
    return 1;
  }
  io.stderr.write(`cyberun-agent: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
}
