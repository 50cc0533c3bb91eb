import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
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

  it('generates keys once (0600), prints the sk- key once, and serves with them', async () => {
    const io = captureIo(dir);
    let status = 0;
    const code = await run(['--port', '0', '--data-dir', 'gw'], io, async (base) => {
      const key = /\n\s+(sk-\S+)\n/.exec(io.err())?.[1] ?? '';
      status = (await fetch(`${base}/api/v1/containers`, { headers: { authorization: `Bearer ${key}` } })).status;
    });
    expect(code).toBe(0);
    expect(status).toBe(200);
    const apiKeys = (await readFile(join(dir, 'gw', 'api-keys'), 'utf8')).trim();
    expect(apiKeys).toMatch(/^sk-[A-Za-z0-9_-]{32}$/);
    expect((await readFile(join(dir, 'gw', 'agent-keys'), 'utf8')).trim()).toMatch(/^ak-/);
    expect((await stat(join(dir, 'gw', 'api-keys'))).mode & 0o777).toBe(0o600);
    expect(io.err().split(apiKeys).length - 1).toBe(1);

    const again = captureIo(dir);
    expect(await run(['--port=0', '--data-dir=gw'], again)).toBe(0);
    expect(again.err()).not.toContain(apiKeys);
    expect(again.err()).not.toMatch(/Generated/);
  });

  it('takes keys from the environment first', async () => {
    const io = captureIo(dir, { CYBERUN_GATEWAY_API_KEYS: 'sk-one, sk-two', CYBERUN_GATEWAY_AGENT_KEYS: 'ak-x' });
    const statuses: number[] = [];
    await run(['--port', '0', '--data-dir', dir], io, async (base) => {
      for (const key of ['sk-two', 'sk-three']) {
        statuses.push((await fetch(`${base}/api/v1/containers`, { headers: { authorization: `Bearer ${key}` } })).status);
      }
    });
    expect(statuses).toEqual([200, 401]);
    await expect(stat(join(dir, 'api-keys'))).rejects.toThrow();
  });

  it.each([
    [['--port', 'abc'], 2, /--port "abc"/],
    [['--bogus', '1'], 2, /unknown flag --bogus/],
    [['--host'], 2, /--host needs a value/],
  ])('refuses %j', async (args, code, message) => {
    const io = captureIo(dir);
    expect(await run(args, io)).toBe(code);
    expect(io.err()).toMatch(message);
  });

  it('refuses a key file with a key of the wrong kind', async () => {
    await writeFile(join(dir, 'api-keys'), 'ak-not-an-api-key\n', { mode: 0o600 });
    const io = captureIo(dir);
    expect(await run(['--port', '0', '--data-dir', dir], io)).toBe(1);
    expect(io.err()).toMatch(/api-keys: key #1 must start with sk- or dk-/);
  });
});
