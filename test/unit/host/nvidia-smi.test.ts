import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAgentError } from '../../../src/errors.js';
import { NVIDIA_SMI_ARGS, parseNvidiaSmiQuery, queryNvidiaSmi } from '../../../src/host/nvidia-smi.js';
import { FAKE_BIN_DIR, fixtureGpus, fixtureHostDir } from '../../fixtures/hosts/gpu-devices.js';
import type { FixtureHost } from '../../fixtures/hosts/gpu-devices.js';

/** What the fake prints for the agent's query on a fixture host (the captured data, as nvidia-smi formats it). */
function fakeOutput(host: FixtureHost): string {
  return execFileSync(process.execPath, [join(FAKE_BIN_DIR, 'nvidia-smi'), ...NVIDIA_SMI_ARGS], {
    env: { ...process.env, CYBERUN_FAKE_GPU_HOST: fixtureHostDir(host) },
    encoding: 'utf8',
  });
}

describe('parseNvidiaSmiQuery', () => {
  it.each(['h100x8', 'a100x4', 'rtx4090x1'] as const)('reads every GPU of %s', (host) => {
    const parsed = parseNvidiaSmiQuery(fakeOutput(host));
    const want = fixtureGpus(host);
    expect(parsed.map((g) => g.index)).toEqual(want.map((g) => g.index));
    expect(parsed.map((g) => g.name)).toEqual(want.map((g) => g.model));
    expect(parsed.map((g) => g.uuid)).toEqual(want.map((g) => g.uuid));
    expect(parsed.map((g) => g.memoryTotalMb)).toEqual(want.map((g) => g.vramTotalMb));
    expect(parsed.map((g) => g.memoryFreeMb)).toEqual(want.map((g) => g.vramFreeMb));
    expect(parsed.map((g) => g.busId)).toEqual(want.map((g) => g.busId));
    expect(parsed.map((g) => g.driverVersion)).toEqual(want.map((g) => g.driverVersion));
  });

  it.each([
    ['empty output', '', []],
    ['blank lines only', '\n\n', []],
    [
      '[N/A] and [Not Supported] become undefined',
      '0, [N/A], NVIDIA GeForce RTX 4090, [N/A], [Not Supported], 00000000:01:00.0, 580.95.05\n',
      [{ index: 0, uuid: undefined, name: 'NVIDIA GeForce RTX 4090', memoryTotalMb: undefined, memoryFreeMb: undefined, busId: '00000000:01:00.0', driverVersion: '580.95.05' }],
    ],
    [
      'rows are ordered by index, CRLF tolerated',
      '1, GPU-b, NVIDIA L40S, 46068, 46000, 00000000:02:00.0, 595.80\r\n0, GPU-a, NVIDIA L40S, 46068, 45000, 00000000:01:00.0, 595.80\r\n',
      [
        { index: 0, uuid: 'GPU-a', name: 'NVIDIA L40S', memoryTotalMb: 46068, memoryFreeMb: 45000, busId: '00000000:01:00.0', driverVersion: '595.80' },
        { index: 1, uuid: 'GPU-b', name: 'NVIDIA L40S', memoryTotalMb: 46068, memoryFreeMb: 46000, busId: '00000000:02:00.0', driverVersion: '595.80' },
      ],
    ],
    [
      'a name with ", " stays whole',
      '0, GPU-a, Odd, Name, 100, 50, 00000000:01:00.0, 1.0\n',
      [{ index: 0, uuid: 'GPU-a', name: 'Odd, Name', memoryTotalMb: 100, memoryFreeMb: 50, busId: '00000000:01:00.0', driverVersion: '1.0' }],
    ],
  ])('%s', (_name, stdout, want) => {
    expect(parseNvidiaSmiQuery(stdout)).toEqual(want);
  });

  it.each([
    ['too few fields', '0, GPU-a, NVIDIA L40S\n'],
    ['index is not a number', 'index, uuid, name, memory.total [MiB], memory.free [MiB], pci.bus_id, driver_version\n'],
    ['a driver error message', "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"],
  ])('throws INVENTORY_FAILED on %s', (_name, stdout) => {
    expect(() => parseNvidiaSmiQuery(stdout)).toThrow(expect.objectContaining({ code: 'AGENT_ERR_INVENTORY_FAILED' }));
  });
});

describe('queryNvidiaSmi', () => {
  let tmp: string;
  let nodeOnly: string;
  let slow: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'cyberun-smi-'));
    nodeOnly = join(tmp, 'node-only');
    slow = join(tmp, 'slow');
    mkdirSync(nodeOnly);
    mkdirSync(slow);
    symlinkSync(process.execPath, join(nodeOnly, 'node'));
    writeFileSync(join(slow, 'nvidia-smi'), '#!/bin/sh\nexec sleep 10\n');
    chmodSync(join(slow, 'nvidia-smi'), 0o755);
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  const env = (path: string, host: FixtureHost) => ({ PATH: path, CYBERUN_FAKE_GPU_HOST: fixtureHostDir(host) });

  it('runs nvidia-smi from the given PATH and parses it', async () => {
    const result = await queryNvidiaSmi({ timeoutMs: 10_000, env: env(`${FAKE_BIN_DIR}:${nodeOnly}`, 'a100x4') });
    expect(result.kind).toBe('ok');
    expect(result.kind === 'ok' && result.gpus.map((g) => g.busId)).toEqual([
      '00000000:01:00.0',
      '00000000:41:00.0',
      '00000000:81:00.0',
      '00000000:C1:00.0',
    ]);
  });

  it('is unavailable, not an error, where nvidia-smi is not installed', async () => {
    const result = await queryNvidiaSmi({ timeoutMs: 10_000, env: env(nodeOnly, 'a100x4') });
    expect(result).toEqual({ kind: 'unavailable', reason: 'nvidia-smi is not on PATH' });
  });

  it('is unavailable with the tool’s message where no driver is loaded', async () => {
    const result = await queryNvidiaSmi({ timeoutMs: 10_000, env: env(`${FAKE_BIN_DIR}:${nodeOnly}`, 'nogpu') });
    expect(result.kind).toBe('unavailable');
    expect(result.kind === 'unavailable' && result.reason).toMatch(/^nvidia-smi failed \(exit 9\): NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/);
  });

  it('is unavailable after timeoutMs when nvidia-smi hangs', async () => {
    const started = Date.now();
    const result = await queryNvidiaSmi({ timeoutMs: 300, env: { PATH: `${slow}:/usr/bin:/bin` } });
    expect(result).toEqual({ kind: 'unavailable', reason: 'nvidia-smi did not answer within 300 ms' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('rejects with ABORTED when the caller aborts', async () => {
    const controller = new AbortController();
    const pending = queryNvidiaSmi({ timeoutMs: 10_000, env: { PATH: `${slow}:/usr/bin:/bin` }, signal: controller.signal });
    controller.abort();
    const err = await pending.then(() => undefined, (e: unknown) => e);
    expect(isAgentError(err, 'AGENT_ERR_ABORTED')).toBe(true);
  });
});
