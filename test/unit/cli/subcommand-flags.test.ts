import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { devCommand } from '../../../src/cli/dev.js';
import { gatewayCommand } from '../../../src/cli/gateway.js';
import type { CliIo } from '../../../src/cli/io.js';

async function run(command: typeof devCommand, args: string[]) {
  let out = '';
  let err = '';
  const io: CliIo = { stdout: { write: (c: string) => (out += c) }, stderr: { write: (c: string) => (err += c) }, stdin: new PassThrough(), env: {}, cwd: '/' };
  const code = await command(args, io);
  return { code, out, err };
}

/** Bad flags of `gateway` and `dev` end with exit 2 and a message naming the flag, before anything starts. */
describe('gateway and dev flags (node:util parseArgs)', () => {
  it.each<[string, typeof devCommand, string[], string]>([
    ['gateway', gatewayCommand, ['--bogus'], 'cyberun-agent gateway: unknown flag --bogus'],
    ['gateway', gatewayCommand, ['--port'], 'cyberun-agent gateway: --port needs a value'],
    ['gateway', gatewayCommand, ['--port=70000'], 'cyberun-agent gateway: --port "70000" must be an integer from 0 to 65535'],
    ['gateway', gatewayCommand, ['--disconnect-grace', 'soon'], 'cyberun-agent gateway: --disconnect-grace: "soon" is not a duration'],
    ['gateway', gatewayCommand, ['extra'], 'cyberun-agent gateway: unexpected argument "extra"'],
    ['gateway', gatewayCommand, ['issue-agent-key'], 'cyberun-agent gateway issue-agent-key: name the agent id the key is for'],
    ['gateway', gatewayCommand, ['issue-agent-key', 'a', 'b'], 'cyberun-agent gateway issue-agent-key: unexpected argument "b"'],
    ['gateway', gatewayCommand, ['issue-agent-key', 'a', '--data'], 'cyberun-agent gateway issue-agent-key: unknown flag --data'],
    ['dev', devCommand, ['--port', 'x'], 'cyberun-agent dev: --port "x" must be an integer from 0 to 65535'],
    ['dev', devCommand, ['--data-dir'], 'cyberun-agent dev: --data-dir needs a value'],
  ])('%s %j', async (_name, command, args, message) => {
    const { code, err } = await run(command, args);
    expect(code).toBe(2);
    expect(err).toContain(message);
  });

  it('prints usage for --help and -h', async () => {
    expect(await run(gatewayCommand, ['--help'])).toMatchObject({ code: 0, out: expect.stringContaining('usage: cyberun-agent gateway') });
    expect(await run(devCommand, ['-h'])).toMatchObject({ code: 0, out: expect.stringContaining('usage: cyberun-agent dev') });
  });
});
