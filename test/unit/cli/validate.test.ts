import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { CliIo } from '../../../src/cli/io.js';
import { validateCommand } from '../../../src/cli/validate.js';
import { containerSpecHash } from '../../../src/service-definition/spec-hash.js';
import type { ServiceDefinition } from '../../../src/service-definition/types.js';

const SECRET = 'hf_sup3rs3cret';

const good = {
  service_slug: 'llm-svc',
  display_name: 'LLM',
  docker_image: 'vllm/vllm-openai:latest',
  gpu_count: 1,
  env_config: [{ env_name: 'HF_TOKEN', env_value: SECRET }],
};

const bad = {
  service_slug: 'My_Svc',
  display_name: 'LLM',
  exposed_port: 70000,
  env_config: [{ env_name: '1X', env_value: SECRET }],
  replicas: 2,
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cyberun-validate-'));
  await writeFile(path.join(dir, 'good.json'), JSON.stringify(good, null, 2));
  await writeFile(path.join(dir, 'bad.json'), JSON.stringify(bad));
  await writeFile(
    path.join(dir, 'good.yaml'),
    'service_slug: llm-svc\ndisplay_name: LLM\ndocker_image: vllm/vllm-openai:latest\ngpu_count: 1\nenv_config:\n  - env_name: HF_TOKEN\n    env_value: hf_sup3rs3cret\n',
  );
  await writeFile(path.join(dir, 'broken.json'), `{\n  "service_slug": "llm-svc",\n  "env_config": [{"env_name": "T", "env_value": "${SECRET}"}\n}\n`);
  await writeFile(path.join(dir, 'dup.json'), '{"service_slug": "a-b", "service_slug": "c-d"}');
  await writeFile(path.join(dir, 'broken.yaml'), `service_slug: llm-svc\nenv_config:\n  - env_name: T\n    env_value: [${SECRET}\n`);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(args: string[], stdin = ''): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (chunk: string) => (stdout += chunk) },
    stderr: { write: (chunk: string) => (stderr += chunk) },
    stdin: Readable.from([Buffer.from(stdin)]),
    env: {},
    cwd: dir,
  };
  const code = await validateCommand(args, io);
  return { code, stdout, stderr };
}

describe('cyberun-agent validate', () => {
  it.each([['good.json'], ['good.yaml']])('accepts %s: exit 0, normalized JSON on stdout, hash on stderr', async (file) => {
    const { code, stdout, stderr } = await run([file]);
    expect(code).toBe(0);
    const spec = JSON.parse(stdout) as ServiceDefinition;
    expect(spec).toMatchObject({ ...good, service_type: 'deployed', exposed_port: 8080, health_path: '/health', replica_count: 1, volume_config: [], required_labels: [] });
    expect(stderr).toBe(`containerSpecHash: ${containerSpecHash(spec)}\n`);
  });

  it('reads JSON from stdin with -', async () => {
    const { code, stdout } = await run(['-'], JSON.stringify(good));
    expect(code).toBe(0);
    expect((JSON.parse(stdout) as ServiceDefinition).service_slug).toBe('llm-svc');
  });

  it('refuses an invalid definition: exit 1, every issue as "  <path>: <message>", nothing on stdout', async () => {
    const { code, stdout, stderr } = await run(['bad.json']);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('bad.json: 5 problems in the service definition:');
    const paths = lines.slice(1).map((line) => /^ {2}(\S+): /.exec(line)?.[1]);
    expect(paths).toEqual(['service_slug', 'docker_image', 'exposed_port', 'env_config[0].env_name', 'replicas']);
    expect(stderr).not.toContain(SECRET);
  });

  it.each([
    ['missing.json', /^cyberun-agent validate: missing\.json: cannot read the file: no such file\n$/],
    ['broken.json', /^cyberun-agent validate: broken\.json: not valid JSON: expected ',' or '\]' at line 4, column 1 \(offset \d+\)\n$/],
    ['dup.json', /^cyberun-agent validate: dup\.json: not valid JSON: duplicate key "service_slug" at line 1, column 25 \(offset 24\)\n$/],
    ['broken.yaml', /^cyberun-agent validate: broken\.yaml: not valid YAML: .+ at line \d+, column \d+\n$/],
    ['.', /^cyberun-agent validate: \.: cannot read the file: is a directory\n$/],
  ])('refuses %s with one line naming the file and the position, exit 1', async (file, expected) => {
    const { code, stdout, stderr } = await run([file]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(expected);
    expect(stderr).not.toContain(SECRET);
  });

  it.each([
    ['{"a": 1,}', 'expected a property name in double quotes at line 1, column 9'],
    ['', 'unexpected end of input at line 1, column 1'],
    ['{"a": 01}', "expected ',' or '}' at line 1, column 8"],
    ['{"a": "x\\q"}', 'invalid escape in string at line 1, column 9'],
    ['{"a": tru}', 'unexpected character "t" at line 1, column 7'],
    ['{} {}', 'unexpected text after the JSON value at line 1, column 4'],
  ])('locates the JSON error in %j', async (text, expected) => {
    const { code, stderr } = await run(['-'], text);
    expect(code).toBe(1);
    expect(stderr).toContain(`<stdin>: not valid JSON: ${expected} (offset`);
  });

  it.each([
    [[], /give exactly one file/],
    [['a.json', 'b.json'], /give exactly one file/],
    [['--strict'], /unknown flag --strict/],
    [['--host=yes', 'a.json'], /--host takes no value/],
  ])('names the problem, prints usage and exits 2 for %j', async (args, problem) => {
    const { code, stderr } = await run(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(problem);
    expect(stderr).toMatch(/\nusage: cyberun-agent validate/);
  });

  it('prints usage on stdout for --help', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^usage: cyberun-agent validate/);
  });
});

describe('validate --host', () => {
  async function runIn(cwd: string, env: Record<string, string>, args: string[]): Promise<Run> {
    let stdout = '';
    let stderr = '';
    const io: CliIo = {
      stdout: { write: (chunk: string) => (stdout += chunk) },
      stderr: { write: (chunk: string) => (stderr += chunk) },
      stdin: Readable.from([]),
      env,
      cwd,
    };
    return { code: await validateCommand(args, io), stdout, stderr };
  }

  it('prints the placement verdict for this host and exits 1 when it can never run here', async () => {
    const home = await mkdtemp(path.join(tmpdir(), 'cyberun-validate-host-'));
    const file = path.join(home, 'svc.json');
    const base = { service_slug: 'needs-label', display_name: 'x', docker_image: 'img:1' };
    const env = { CYBERUN_GPU_DETECT: 'none', CYBERUN_AGENT_LABELS: 'zone-a', CYBERUN_STATE_DIR: home, HOME: home };
    await writeFile(file, JSON.stringify({ ...base, required_labels: ['gpu-h100'] }));
    const rejected = await runIn(home, env, ['--host', file]);
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toContain('this host can never run it');
    expect(rejected.stderr).toContain('gpu-h100');

    await writeFile(file, JSON.stringify({ ...base, required_labels: ['zone-a'] }));
    const ok = await runIn(home, env, ['--host', file]);
    expect(ok.stderr).toContain('placement on this host: eligible (labels: zone-a)');
    expect(ok.code).toBe(0);

    await writeFile(file, JSON.stringify({ ...base, volume_config: [{ host_path: '/etc', container_path: '/x' }] }));
    const vol = await runIn(home, env, ['--host', file]);
    expect(vol.code).toBe(1);
    expect(vol.stderr).toContain('volume_config[0].host_path "/etc"');
    await rm(home, { recursive: true, force: true });
  });
});
