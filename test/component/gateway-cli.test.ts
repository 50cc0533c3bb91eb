import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fetch } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { createGatewayCommand } from '../../src/cli/gateway.js';
import type { CliIo } from '../../src/cli/io.js';
import { silentLogger } from '../../src/log.js';

function captureIo(cwd: string, env: Record<string, string> = {}): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (c: string) => (out += c) },
    stderr: { write: (c: string) => (err += c) },
    stdin: new PassThrough(),
    env,
    cwd,
    out: () => out,
    err: () => err,
  };
}

describe('cyberun-agent gateway', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cyberun-gw-cli-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  /** Runs the command; `during` gets the REST base URL printed on stderr, then the command stops. */
  const run = async (args: string[], io: ReturnType<typeof captureIo>, during: (base: string) => Promise<void> = async () => undefined) => {
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const command = createGatewayCommand({
      logger: silentLogger(),
      waitForStop: async () => {
        const base = /REST API at (\S+)\/api\/v1/.exec(io.err())?.[1] ?? '';
        await during(base).finally(stop);
        await stopped;
      },
    });
    return command(args, io);
  };

  const SK1 = 'sk-one-000000000000000000000000';
  const SK2 = 'sk-two-000000000000000000000000';
  const AK1 = 'ak-cli-agent-000000000000000000';

  it('generates an sk- key once (0600, 32 random bytes), prints it once, and serves with it; agent-keys starts empty', async () => {
    const io = captureIo(dir);
    let status = 0;
    const code = await run(['--port', '0', '--data-dir', 'gw'], io, async (base) => {
      const key = /\n\s+(sk-\S+)\n/.exec(io.err())?.[1] ?? '';
      status = (await fetch(`${base}/api/v1/containers`, { headers: { authorization: `Bearer ${key}` } })).status;
    });
    expect(code).toBe(0);
    expect(status).toBe(200);
    const apiKeys = (await readFile(join(dir, 'gw', 'api-keys'), 'utf8')).trim();
    expect(apiKeys).toMatch(/^sk-[A-Za-z0-9_-]{43}$/);
    const agentKeys = await readFile(join(dir, 'gw', 'agent-keys'), 'utf8');
    expect(agentKeys.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'))).toEqual([]);
    expect(io.err()).toMatch(/No agent keys yet .*\n\s+cyberun-agent gateway issue-agent-key <agent-id> --data-dir /);
    for (const file of ['api-keys', 'agent-keys']) expect((await stat(join(dir, 'gw', file))).mode & 0o777).toBe(0o600);
    expect(io.err().split(apiKeys).length - 1).toBe(1);

    const again = captureIo(dir);
    expect(await run(['--port=0', '--data-dir=gw'], again)).toBe(0);
    expect(again.err()).not.toContain(apiKeys);
    expect(again.err()).not.toMatch(/Generated/);
  });

  it('takes keys from the environment first', async () => {
    const io = captureIo(dir, { CYBERUN_GATEWAY_API_KEYS: `${SK1}, ${SK2}`, CYBERUN_GATEWAY_AGENT_KEYS: `${AK1} gpu-host-1` });
    const statuses: number[] = [];
    await run(['--port', '0', '--data-dir', dir], io, async (base) => {
      for (const key of [SK2, 'sk-three-00000000000000000000000']) {
        statuses.push((await fetch(`${base}/api/v1/containers`, { headers: { authorization: `Bearer ${key}` } })).status);
      }
    });
    expect(statuses).toEqual([200, 401]);
    expect(io.err()).not.toMatch(/shared agent key/);
    await expect(stat(join(dir, 'api-keys'))).rejects.toThrow();
  });

  it('issue-agent-key appends "<key> <agent-id>" (0600), prints only the key, and refuses an id that is not hostname-like', async () => {
    const issue = captureIo(dir);
    expect(await createGatewayCommand({ logger: silentLogger(), waitForStop: async () => undefined })(['issue-agent-key', 'gpu-host-1', '--data-dir', dir], issue)).toBe(0);
    const key = issue.out().trim();
    expect(key).toMatch(/^ak-[A-Za-z0-9_-]{43}$/);
    expect(issue.err()).toMatch(/restart the gateway/);
    const second = captureIo(dir);
    expect(await createGatewayCommand({ logger: silentLogger(), waitForStop: async () => undefined })(['issue-agent-key', 'gpu-host-2', `--data-dir=${dir}`], second)).toBe(0);
    const lines = (await readFile(join(dir, 'agent-keys'), 'utf8')).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines).toEqual([`${key} gpu-host-1`, `${second.out().trim()} gpu-host-2`]);
    expect((await stat(join(dir, 'agent-keys'))).mode & 0o777).toBe(0o600);

    const bad = captureIo(dir);
    expect(await createGatewayCommand({ logger: silentLogger(), waitForStop: async () => undefined })(['issue-agent-key', 'GPU HOST', '--data-dir', dir], bad)).toBe(1);
    expect(bad.err()).toMatch(/agent id "GPU HOST" is not hostname-like/);
  });

  it('warns about a shared agent key (no agent id), naming the fix', async () => {
    await writeFile(join(dir, 'api-keys'), `${SK1}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'agent-keys'), `# comment\n${AK1}\n`, { mode: 0o600 });
    const io = captureIo(dir);
    expect(await run(['--port', '0', '--data-dir', dir], io)).toBe(0);
    expect(io.err()).toContain(`warning: 1 shared agent key in ${join(dir, 'agent-keys')}`);
    expect(io.err()).toMatch(/write "<ak-key> <agent-id>" per line, or run "cyberun-agent gateway issue-agent-key <agent-id>"/);
  });

  it.each([
    [['--port', 'abc'], 2, /--port "abc"/],
    [['--bogus', '1'], 2, /unknown flag --bogus/],
    [['--host'], 2, /--host needs a value/],
    [['issue-agent-key'], 2, /name the agent id/],
  ])('refuses %j', async (args, code, message) => {
    const io = captureIo(dir);
    expect(await run(args, io)).toBe(code);
    expect(io.err()).toMatch(message);
  });

  it.each([
    ['a key of the wrong kind', 'api-keys', 'ak-not-an-api-key-0000000000000\n', /api-keys: line 1: the key must start with sk- or dk-/],
    ['a bare prefix', 'api-keys', 'sk-\n', /api-keys: line 1: the key has 0 characters after "sk-"; keys need at least 24/],
    ['a short key', 'agent-keys', '# keys\nak-short gpu-host-1\n', /agent-keys: line 2: the key has 5 characters after "ak-"/],
    ['three fields', 'agent-keys', `${AK1} gpu-host-1 extra\n`, /agent-keys: line 1: expected "<ak-key> <agent-id>", found 3 fields/],
    ['a key listed twice', 'agent-keys', `${AK1} a\n${AK1} b\n`, /agent-keys: line 2: the key is listed twice/],
  ])('refuses a key file with %s', async (_name, file, text, message) => {
    if (file !== 'api-keys') await writeFile(join(dir, 'api-keys'), `${SK1}\n`, { mode: 0o600 });
    await writeFile(join(dir, file), text, { mode: 0o600 });
    const io = captureIo(dir);
    expect(await run(['--port', '0', '--data-dir', dir], io)).toBe(1);
    expect(io.err()).toMatch(message);
    expect(io.err()).not.toMatch(/REST API at/);
  });

  it.each([
    ['api-keys', 0o640],
    ['agent-keys', 0o604],
    ['agent-keys', 0o660],
  ])('stops when %s has a group or other permission bit (mode %o), naming the file and the chmod', async (file, mode) => {
    await writeFile(join(dir, 'api-keys'), `${SK1}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'agent-keys'), `${AK1} gpu-host-1\n`, { mode: 0o600 });
    await chmod(join(dir, file), mode);
    const io = captureIo(dir);
    expect(await run(['--port', '0', '--data-dir', dir], io)).toBe(1);
    const path = join(dir, file);
    expect(io.err()).toContain(`${path} has mode 0${mode.toString(8)}: group or others may access it, so its keys are refused; run: chmod 600 ${path}`);
    expect(io.err()).not.toMatch(/REST API at/);
  });
});
