import { parseArgs } from 'node:util';

/** The options of one subcommand, as node:util parseArgs takes them. */
export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

type Values<S extends OptionSpec> = {
  [K in keyof S]?: S[K]['type'] extends 'string' ? (S[K]['multiple'] extends true ? string[] : string) : S[K]['multiple'] extends true ? boolean[] : boolean;
};

export type ParsedArgs<S extends OptionSpec> =
  | { ok: true; help: boolean; values: Values<S>; positionals: string[]; rest: string[] }
  | { ok: false; problem: string };

/**
 * A subcommand's flags, parsed with node:util `parseArgs` (`--flag value`, `--flag=value`, `-h`).
 *
 * `passThrough`: flags the subcommand does not know are not errors but returned in `rest`, with
 * the value that follows them, in their original order: `status` hands them to the configuration
 * loader, which reports every problem at once. Without it an unknown flag is a usage problem
 * naming the flag. `-h`/`--help` are always known.
 */
export function parseCommandArgs<S extends OptionSpec>(args: readonly string[], options: S, passThrough = false): ParsedArgs<S> {
  const spec: OptionSpec = { ...options, help: { type: 'boolean', short: 'h' } };
  try {
    let known = [...args];
    const rest: string[] = [];
    if (passThrough) {
      // First pass: which arguments belong to our flags (with their values) and which to others.
      known = [];
      const { tokens } = parseArgs({ args: [...args], options: spec, allowPositionals: true, strict: false, tokens: true });
      for (let i = 0; i < tokens.length; i++) {
        const token = tokens[i];
        if (token === undefined) continue;
        if (token.kind === 'option' && token.name in spec) {
          known.push(args[token.index] ?? '');
          if (token.inlineValue === false) known.push(args[token.index + 1] ?? '');
        } else if (token.kind === 'option') {
          rest.push(args[token.index] ?? '');
          // An unknown flag without "=value" takes the next argument as its value, as the config loader reads it.
          const next = tokens[i + 1];
          if (token.inlineValue === undefined && next?.kind === 'positional') {
            rest.push(next.value);
            i++;
          }
        } else if (token.kind === 'positional') rest.push(token.value);
        else rest.push('--');
      }
    }
    // Second pass, strict: typed values and a usage problem for a bad one.
    const parsed = parseArgs({ args: known, options: spec, allowPositionals: !passThrough, strict: true });
    const { help, ...values } = parsed.values as Record<string, unknown>;
    return { ok: true, help: help === true, values: values as Values<S>, positionals: parsed.positionals, rest };
  } catch (err) {
    return { ok: false, problem: usageProblem(err) };
  }
}

/** parseArgs' own messages, shortened to the flag and the fix. */
function usageProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown }).code;
  const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown flag ${flag ?? message}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return message.includes('does not take') ? `${flag ?? 'a flag'} takes no value` : `${flag ?? 'a flag'} needs a value`;
  return message;
}

/** A TCP port as a flag gives it: an integer from 0 (any free port) to 65535, else undefined. */
export function parsePort(value: string): number | undefined {
  return /^\d{1,5}$/.test(value) && Number(value) <= 65535 ? Number(value) : undefined;
}
