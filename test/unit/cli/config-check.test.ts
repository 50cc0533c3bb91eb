import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configCheckCommand } from '../../../src/cli/config-check.js';
import type { CliIo } from '../../../src/cli/io.js';

const KEY = 'ak-5d1e9c7b3a2f4e6d8c0b1a3f5e7d9c2b4a6f8e0d';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cyberun-config-check-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the command in-process; HOME and agent_id are pinned so the host does not leak in. */
async function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (chunk: string) => (stdout += chunk) },
    stderr: { write: (chunk: string) => (stderr += chunk) },
    stdin: Readable.from([]),
    env: { HOME: dir, CYBERUN_AGENT_ID: 'test-host', ...env },
    cwd: dir,
  };
  const code = await configCheckCommand(args, io);
  return { code, stdout, stderr };
}

describe('cyberun-agent config check', () => {
  it('prints the effective config as YAML, each value with its source, the key masked', async () => {
    const file = path.join(dir, 'cyberun-agent.yaml');
    await writeFile(file, 'gateway_url: wss://gw.example/agent\nhealth:\n  start_budget: 45m\nagent_labels: [gpu-h100]\n');
    const { code, stdout, stderr } = await run(['--set', 'pull.stall_timeout=5m', '--log-level', 'debug'], {
      CYBERUN_AGENT_KEY: KEY,
      CYBERUN_DOCKER_NETWORK: 'gpu-net',
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines).toContain(`# config file: ${file}`);
    const line = (prefix: string) => lines.find((l) => l.startsWith(prefix)) ?? `(no line ${prefix})`;
    expect(line('gateway_url:')).toMatch(new RegExp(`^gateway_url: wss://gw.example/agent +# file ${file}$`));
    expect(line('  network:')).toMatch(/^ {2}network: gpu-net +# env CYBERUN_DOCKER_NETWORK$/);
    expect(line('  stall_timeout:')).toMatch(/^ {2}stall_timeout: 5m +# flag --set pull.stall_timeout$/);
    expect(line('  start_budget:')).toMatch(/^ {2}start_budget: 45m +# file /);
    expect(line('log_level:')).toMatch(/^log_level: debug +# flag --log-level$/);
    expect(line('  interval:')).toMatch(/^ {2}interval: 5s +# default$/);
    expect(line('# agent_key:')).toMatch(/^# agent_key: ak-…\(set, 43 chars\) +# env CYBERUN_AGENT_KEY$/);
    expect(stdout).not.toContain(KEY.slice(3));

    const parsed = parse(stdout) as Record<string, unknown>;
    expect(parsed).toMatchObject({
      gateway_url: 'wss://gw.example/agent',
      agent_id: 'test-host',
      agent_labels: ['gpu-h100'],
      docker: { network: 'gpu-net', socket: '/var/run/docker.sock' },
      proxy: { max_body: '10GiB', idle_timeout: '15m' },
    });
    expect(parsed).not.toHaveProperty('agent_key');
  });

  it('prints output that, read back as the config file, gives the same effective config', async () => {
    const first = await run(['--label', 'a', '--label', 'b', '--set', 'volumes.allowed_roots=/data/models,/srv/cache', '--set', 'proxy.max_body=1234']);
    expect(first.code).toBe(0);
    await writeFile(path.join(dir, 'copy.yaml'), first.stdout);
    const second = await run(['--config', 'copy.yaml']);
    expect(second.code).toBe(0);
    const strip = (out: string) => out.replace(/ +#.*$/gm, '').replace(/^#.*\n/gm, '');
    expect(strip(second.stdout)).toBe(strip(first.stdout));
  });

  it('prints warnings to stderr and still exits 0', async () => {
    const keyFile = path.join(dir, 'agent.key');
    await writeFile(keyFile, `${KEY}\n`);
    await chmod(keyFile, 0o640);
    const { code, stdout, stderr } = await run(['--agent-key-file', keyFile, '--gateway-url', 'ws://gw.example/agent']);
    expect(code).toBe(0);
    expect(stderr).toContain(`warning: agent_key_file: ${keyFile} is readable by its group (mode 0640); run: chmod 600 ${keyFile}\n`);
    expect(stderr).toContain('warning: gateway_url: ws:// to gw.example');
    expect(stdout + stderr).not.toContain(KEY.slice(3));
  });

  it('lists every problem on stderr, one "  <path>: <message>" line each, and exits 1', async () => {
    await writeFile(path.join(dir, 'cyberun-agent.yaml'), 'docker:\n  sockett: /x\nhealth:\n  interval: often\n');
    const { code, stdout, stderr } = await run(['--agent-key', KEY, '--bogus', 'x'], { CYBERUN_GATEWAY_URLL: 'wss://x' });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('cyberun-agent: invalid configuration (5 problems):');
    expect(lines.slice(1).map((l) => /^ {2}(\S+): /.exec(l)?.[1]).sort()).toEqual(
      ['--agent-key', '--bogus', 'CYBERUN_GATEWAY_URLL', 'docker.sockett', 'health.interval'].sort(),
    );
    expect(stderr).toContain('  docker.sockett: unknown key; did you mean "socket"?');
    expect(stderr).not.toContain(KEY.slice(3));
  });

  it('answers --help with usage and exit 0', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: cyberun-agent config check/);
    expect(stdout).toContain('Exit status');
  });
});
