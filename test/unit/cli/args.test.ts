import { describe, expect, it } from 'vitest';
import { parseCommandArgs } from '../../../src/cli/args.js';

const STATUS = { json: { type: 'boolean' }, wait: { type: 'string' }, admin: { type: 'string' } } as const;

describe('parseCommandArgs', () => {
  it('keeps unknown flags, with their values and in order, for the configuration loader', () => {
    const parsed = parseCommandArgs(['--state-dir', '/x', '--json', '--set', 'gpu.detect=none', '--wait=5s', '--label=a'], STATUS, true);
    expect(parsed).toMatchObject({ ok: true, values: { json: true, wait: '5s' }, rest: ['--state-dir', '/x', '--set', 'gpu.detect=none', '--label=a'] });
  });

  it.each([
    [['--wait'], '--wait needs a value'],
    [['--wait', '--json'], '--wait needs a value'],
    [['--json=yes'], '--json takes no value'],
  ])('pass-through still judges its own flags: %j → %s', (args, problem) => {
    expect(parseCommandArgs(args, STATUS, true)).toEqual({ ok: false, problem });
  });

  it.each([
    [['--nope'], 'unknown flag --nope'],
    [['--admin'], '--admin needs a value'],
  ])('strict: %j → %s', (args, problem) => {
    expect(parseCommandArgs(args, STATUS)).toEqual({ ok: false, problem });
  });

  it('reads -h and positionals', () => {
    expect(parseCommandArgs(['-h', 'file.json', '-'], STATUS)).toMatchObject({ ok: true, help: true, positionals: ['file.json', '-'] });
  });
});
