import { parseCommandArgs } from './args.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { parse as parseYaml, YAMLParseError } from 'yaml';

import { errorMessage } from '../errors.js';
import { validateServiceDefinition } from '../service-definition/schema.js';
import { containerSpecHash } from '../service-definition/spec-hash.js';
import type { CliCommand, CliIo } from './io.js';
import { judgeOnThisHost } from './host-verdict.js';

/** A definition is a few KiB; anything far larger is a wrong file, not a definition. */
const MAX_BYTES = 1024 * 1024;

const USAGE = `usage: cyberun-agent validate [--host] <file.json|file.yaml|->

Validates a Cyberun service definition (the body of POST /containers) offline.
  <file>  a .json file, a .yaml/.yml file, or - for JSON on stdin
  --host  also judge it against this host as the agent would (labels from the agent's config plus
          detected hardware, GPU count, volumes against the allowlist); exit 1 if it can never run here

On success prints the normalized definition (every default applied) as JSON on stdout and its
containerSpecHash on stderr, exit 0. On any problem prints every issue on stderr, exit 1.
`;

class InputError extends Error {}

/**
 * `cyberun-agent validate <file.json|file.yaml|->`. Exit 0: valid, normalized JSON on stdout and
 * `containerSpecHash: <hex>` on stderr. Exit 1: unreadable, unparsable or invalid, every problem
 * on stderr (values of env_config are never printed, not even in parse errors). Exit 2: usage.
 */
export const validateCommand: CliCommand = async (args, io) => {
  const parsed = parseCommandArgs(args, { host: { type: 'boolean' } });
  if (!parsed.ok) {
    io.stderr.write(`cyberun-agent validate: ${parsed.problem}\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const onHost = parsed.values.host === true;
  const file = parsed.positionals[0];
  if (parsed.positionals.length !== 1 || file === undefined) {
    io.stderr.write(`cyberun-agent validate: give exactly one file (or - for stdin)\n${USAGE}`);
    return 2;
  }
  const label = file === '-' ? '<stdin>' : file;

  let input: unknown;
  try {
    const text = stripBom(file === '-' ? await readStdin(io) : await readSource(io, file));
    input = /\.ya?ml$/i.test(file) ? parseYamlText(text) : parseJsonText(text);
  } catch (err) {
    io.stderr.write(`cyberun-agent validate: ${label}: ${errorMessage(err)}\n`);
    return 1;
  }

  const result = validateServiceDefinition(input);
  if (!result.ok) {
    const count = result.issues.length;
    io.stderr.write(`${label}: ${count} problem${count === 1 ? '' : 's'} in the service definition:\n`);
    for (const issue of result.issues) io.stderr.write(`  ${issue.path}: ${issue.message}\n`);
    return 1;
  }
  const definition = result.value;

  if (onHost) {
    let verdict;
    try {
      verdict = await judgeOnThisHost(definition, io);
    } catch (err) {
      io.stderr.write(`cyberun-agent validate: cannot judge placement on this host: ${errorMessage(err)}\n`);
      return 1;
    }
    if (verdict.kind === 'rejected') {
      io.stderr.write(`${label}: valid, but this host can never run it: ${verdict.reason}\n`);
      return 1;
    }
    io.stderr.write(`placement on this host: eligible (labels: ${verdict.labels.join(', ') || 'none'})\n`);
  }

  io.stdout.write(`${JSON.stringify(definition, null, 2)}\n`);
  io.stderr.write(`containerSpecHash: ${containerSpecHash(definition)}\n`);
  return 0;
};

async function readSource(io: CliIo, file: string): Promise<string> {
  let buffer: Buffer;
  try {
    buffer = await readFile(path.resolve(io.cwd, file));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : errorMessage(err);
    throw new InputError(`cannot read the file: ${why}`);
  }
  if (buffer.length > MAX_BYTES) throw new InputError(`refusing a file larger than ${MAX_BYTES} bytes (${buffer.length})`);
  return buffer.toString('utf8');
}

async function readStdin(io: CliIo): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of io.stdin) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > MAX_BYTES) throw new InputError(`refusing input larger than ${MAX_BYTES} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** YAML with the parser's own position; its code frame is dropped (it could show a secret). */
function parseYamlText(text: string): unknown {
  try {
    return parseYaml(text);
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const headline = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
      const at = err.linePos?.[0];
      throw new InputError(`not valid YAML: ${headline}${at === undefined ? '' : ` at line ${at.line}, column ${at.col}`}`);
    }
    throw err;
  }
}

/**
 * Strict JSON (RFC 8259) with duplicate keys refused, as YAML refuses them. Errors name line and
 * column but never quote the text: V8's messages quote the input, which may hold an env value.
 */
function parseJsonText(text: string): unknown {
  const problem = findJsonProblem(text);
  if (problem !== undefined) {
    const before = text.slice(0, problem.offset).split('\n');
    const line = before.length;
    const column = (before.at(-1)?.length ?? 0) + 1;
    throw new InputError(`not valid JSON: ${problem.message} at line ${line}, column ${column} (offset ${problem.offset})`);
  }
  return JSON.parse(text) as unknown;
}

class JsonProblem {
  readonly offset: number;
  readonly message: string;
  constructor(offset: number, message: string) {
    this.offset = offset;
    this.message = message;
  }
}

/** The first syntax error of `text` as JSON (or a duplicate key), or undefined if it is valid. */
function findJsonProblem(text: string): JsonProblem | undefined {
  let i = 0;
  const fail = (message: string, offset = i): never => {
    throw new JsonProblem(offset, message);
  };
  const skipSpace = () => {
    while (i < text.length && ' \t\n\r'.includes(text.charAt(i))) i++;
  };
  const string = (): string => {
    const start = i++;
    for (;;) {
      const c = text.charAt(i);
      if (i >= text.length) fail('unterminated string', start);
      if (c === '"') return JSON.parse(text.slice(start, ++i)) as string;
      if (c === '\\') {
        const escape = text.charAt(i + 1);
        const valid = escape === 'u' ? /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6)) : escape !== '' && '"\\/bfnrt'.includes(escape);
        if (!valid) fail('invalid escape in string');
        i += escape === 'u' ? 6 : 2;
      } else if (c.charCodeAt(0) < 0x20) {
        fail('unescaped control character in string');
      } else {
        i++;
      }
    }
  };
  const value = (): void => {
    skipSpace();
    const c = text.charAt(i);
    if (i >= text.length) fail('unexpected end of input');
    if (c === '{') {
      i++;
      const keys = new Set<string>();
      skipSpace();
      if (text.charAt(i) === '}') return void i++;
      for (;;) {
        skipSpace();
        if (text.charAt(i) !== '"') fail('expected a property name in double quotes');
        const keyAt = i;
        const key = string();
        if (keys.has(key)) fail(`duplicate key ${JSON.stringify(key)}`, keyAt);
        keys.add(key);
        skipSpace();
        if (text.charAt(i) !== ':') fail(`expected ':' after a property name`);
        i++;
        value();
        skipSpace();
        if (text.charAt(i) === ',') i++;
        else if (text.charAt(i) === '}') return void i++;
        else fail(`expected ',' or '}'`);
      }
    }
    if (c === '[') {
      i++;
      skipSpace();
      if (text.charAt(i) === ']') return void i++;
      for (;;) {
        value();
        skipSpace();
        if (text.charAt(i) === ',') i++;
        else if (text.charAt(i) === ']') return void i++;
        else fail(`expected ',' or ']'`);
      }
    }
    if (c === '"') return void string();
    const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    number.lastIndex = i;
    if ((c === '-' || (c >= '0' && c <= '9')) && number.test(text)) return void (i = number.lastIndex);
    for (const literal of ['true', 'false', 'null']) if (text.startsWith(literal, i)) return void (i += literal.length);
    fail(c === '-' || (c >= '0' && c <= '9') ? 'invalid number' : `unexpected character ${JSON.stringify(c)}`);
  };
  try {
    value();
    skipSpace();
    if (i < text.length) fail('unexpected text after the JSON value');
    return undefined;
  } catch (err) {
    if (err instanceof JsonProblem) return err;
    throw err;
  }
}
