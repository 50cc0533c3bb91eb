import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAgentError } from '../../../src/errors.js';
import { NVIDIA_SMI_ARGS, parseNvidiaSmiOutput, parseNvidiaSmiQuery, queryNvidiaSmi } from '../../../src/host/nvidia-smi.js';
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
  it.each(['h100x8', 'a100x4', 'rtx4090x1', 'rtxpro6000x4'] as const)('reads every GPU of %s', (host) => {
    const parsed = parseNvidiaSmiQuery(fakeOutput(host));
    const want = fixtureGpus(host);
    expect(parsed.map((g) => g.index)).toEqual(want.map((g) => g.index));
    expect(parsed.map((g) => g.name)).toEqual(want.map((g) => g.model));
    expect(parsed.map((g) => g.uuid)).toEqual(want.map((g) => g.uuid));
    expect(parsed.map((g) => g.memoryTotalMb)).toEqual(want.map((g) => g.vramTotalMb));
    expect(parsed.map((g) => g.memoryFreeMb)).toEqual(want.map((g) => g.vramFreeMb));
    expect(parsed.map((g) => g.busId)).toEqual(want.map((g) => g.busId));
    expect(parsed.map((g) => g.driverVersion)).toEqual(want.map((g) => g.driverVersion));
    expect(parsed.map((g) => g.fault)).toEqual(want.map(() => undefined));
  });

  it.each([
    ['empty output', '', []],
    ['blank lines only', '\n\n', []],
    [
      '[N/A] and [Not Supported] become undefined, and are no fault outside the required fields',
      '0, [N/A], NVIDIA GeForce RTX 4090, [N/A], [Not Supported], 00000000:01:00.0, 580.95.05, 38, [N/A]\n',
      [{ index: 0, uuid: undefined, name: 'NVIDIA GeForce RTX 4090', memoryTotalMb: undefined, memoryFreeMb: undefined, busId: '00000000:01:00.0', driverVersion: '580.95.05', fault: undefined }],
    ],
    [
      'rows are ordered by index, CRLF tolerated',
      '1, GPU-b, NVIDIA L40S, 46068, 46000, 00000000:02:00.0, 595.80, 30, P8\r\n0, GPU-a, NVIDIA L40S, 46068, 45000, 00000000:01:00.0, 595.80, 31, P8\r\n',
      [
        { index: 0, uuid: 'GPU-a', name: 'NVIDIA L40S', memoryTotalMb: 46068, memoryFreeMb: 45000, busId: '00000000:01:00.0', driverVersion: '595.80', fault: undefined },
        { index: 1, uuid: 'GPU-b', name: 'NVIDIA L40S', memoryTotalMb: 46068, memoryFreeMb: 46000, busId: '00000000:02:00.0', driverVersion: '595.80', fault: undefined },
      ],
    ],
    [
      'a name with ", " stays whole',
      '0, GPU-a, Odd, Name, 100, 50, 00000000:01:00.0, 1.0, 40, P0\n',
      [{ index: 0, uuid: 'GPU-a', name: 'Odd, Name', memoryTotalMb: 100, memoryFreeMb: 50, busId: '00000000:01:00.0', driverVersion: '1.0', fault: undefined }],
    ],
    [
      'an NVML error in a reading is the row\'s fault, and the value is undefined',
      '0, GPU-a, NVIDIA H100 80GB HBM3, 81559, 0, 00000000:23:00.0, 570.86, [GPU requires reset], [GPU requires reset]\n',
      [{ index: 0, uuid: 'GPU-a', name: 'NVIDIA H100 80GB HBM3', memoryTotalMb: 81559, memoryFreeMb: 0, busId: '00000000:23:00.0', driverVersion: '570.86', fault: 'nvidia-smi prints "GPU requires reset" for temperature.gpu, pstate' }],
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

  it('returns a "device handle" line on stdout as an unopened GPU, between rows', () => {
    // The captured line of test/fixtures/hosts/rtxpro6000x4-gpu1-lost, as `2>&1` merged it.
    const out = parseNvidiaSmiOutput(
      '0, [N/A], NVIDIA RTX PRO 6000 Blac..., 97887, 9437, 00000000:16:00.0, 610.57.04, 87, P1\n' +
        'Unable to determine the device handle for GPU1: 0000:34:00.0: Unknown Error\n' +
        '2, [N/A], NVIDIA RTX PRO 6000 Blac..., 97887, 9437, 00000000:AC:00.0, 610.57.04, 86, P1\n',
    );
    expect(out.gpus.map((g) => g.index)).toEqual([0, 2]);
    expect(out.unopened).toEqual([{ index: 1, busId: '0000:34:00.0', reason: 'Unknown Error' }]);
  });

  it('reads the captured ERR! GPU of a40x2-gpu0-err as a fault with no name', () => {
    const [gpu0, gpu1] = parseNvidiaSmiQuery(fakeOutput('a40x2-gpu0-err'));
    expect(gpu0).toMatchObject({ index: 0, name: undefined, busId: '00000000:19:00.0', memoryTotalMb: 46068 });
    expect(gpu0?.fault).toBe('nvidia-smi prints "Unknown Error" for name, temperature.gpu, pstate');
    expect(gpu1).toMatchObject({ index: 1, name: 'NVIDIA A40', fault: undefined });
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

  it('reads rows and the lost GPU from a run that names one on stderr and exits 15 (rtxpro6000x4-gpu1-lost)', async () => {
    const result = await queryNvidiaSmi({ timeoutMs: 10_000, env: env(`${FAKE_BIN_DIR}:${nodeOnly}`, 'rtxpro6000x4-gpu1-lost') });
    expect(result.kind).toBe('ok');
    if (result.kind !== 'ok') return;
    expect(result.gpus.map((g) => g.busId)).toEqual(['00000000:16:00.0', '00000000:AC:00.0', '00000000:CA:00.0']);
    expect(result.unopened).toEqual([{ index: 1, busId: '0000:34:00.0', reason: 'Unknown Error' }]);
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
