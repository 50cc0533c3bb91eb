import type { Readable } from 'node:stream';

/**
 * What a CLI command may touch of the process. Commands take it as a parameter so tests run them
 * in-process with captured output. Commands return their exit code; they never call process.exit.
 */
export interface CliIo {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
  stdin: Readable;
  env: Record<string, string | undefined>;
  cwd: string;
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd() };
}

export type CliCommand = (args: string[], io: CliIo) => Promise<number>;
