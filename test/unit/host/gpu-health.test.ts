import { describe, expect, it } from 'vitest';
import { faultIn, gpuInventoryUpdate, parseUnopenedGpu, rowFault, sameBusId, withMissingGpus } from '../../../src/host/gpu-health.js';
import type { GpuDevice } from '../../../src/domain/gpu-device.js';
import { fixtureGpus } from '../../fixtures/hosts/gpu-devices.js';

describe('faultIn', () => {
  it.each([
    ['ERR!', 'ERR!'],
    ['[GPU is lost]', 'GPU is lost'],
    ['[GPU requires reset]', 'GPU requires reset'],
    ['[Unknown Error]', 'Unknown Error'],
    [' [Unknown Error] ', 'Unknown Error'],
    ['[N/A]', undefined],
    ['[Not Supported]', undefined],
    ['[Insufficient Permissions]', undefined],
    ['N/A', undefined],
    ['38', undefined],
    ['NVIDIA A40', undefined],
  ])('%j → %j', (value, want) => {
    expect(faultIn(value)).toBe(want);
  });
});

describe('rowFault', () => {
  const healthy = { index: '0', uuid: 'GPU-a', name: 'NVIDIA A40', 'memory.total': '46068', 'memory.free': '46068', 'pci.bus_id': '00000000:1A:00.0', driver_version: '525.125.06', 'temperature.gpu': '26', pstate: 'P8' };
  it.each([
    ['a healthy row', healthy, undefined],
    ['a row without fan/power readings (not queried) or UUID', { ...healthy, uuid: '[N/A]' }, undefined],
    ['[N/A] for a reading that boards may lack', { ...healthy, 'memory.free': '[N/A]', pstate: '[Not Supported]' }, undefined],
    ['one error', { ...healthy, 'temperature.gpu': '[GPU requires reset]' }, 'nvidia-smi prints "GPU requires reset" for temperature.gpu'],
    ['one error in several fields', { ...healthy, 'temperature.gpu': '[GPU is lost]', pstate: '[GPU is lost]' }, 'nvidia-smi prints "GPU is lost" for temperature.gpu, pstate'],
    ['two errors', { ...healthy, name: 'ERR!', pstate: '[Unknown Error]' }, 'nvidia-smi prints "ERR!" for name; nvidia-smi prints "Unknown Error" for pstate'],
    ['[N/A] where a value is required', { ...healthy, 'pci.bus_id': '[N/A]' }, 'nvidia-smi reports no pci.bus_id'],
    ['no name', { ...healthy, name: '[N/A]' }, 'nvidia-smi reports no name'],
  ])('%s', (_what, row, want) => {
    expect(rowFault(row)).toBe(want);
  });
});

describe('parseUnopenedGpu on captured lines', () => {
  it.each([
    // https://github.com/JosephKJ/OWOD/issues/81
    ['Unable to determine the device handle for GPU 0000:02:00.0: GPU is lost. Reboot the system to recover this GPU', { index: undefined, busId: '0000:02:00.0', reason: 'GPU is lost. Reboot the system to recover this GPU' }],
    // https://github.com/marian-nmt/marian/issues/251 (two spaces after "lost.", as printed)
    ['Unable to determine the device handle for GPU 0000:03:00.0: GPU is lost.  Reboot the system to recover this GPU', { index: undefined, busId: '0000:03:00.0', reason: 'GPU is lost. Reboot the system to recover this GPU' }],
    // https://github.com/NVIDIA/open-gpu-kernel-modules/issues/387
    ['Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error', { index: undefined, busId: '0000:0B:00.0', reason: 'Unknown Error' }],
    // https://github.com/pdbear/syno_nvidia_gpu_driver/issues/22 (no space after "GPU")
    ['Unable to determine the device handle for GPU0000:07:00.0: Unknown Error', { index: undefined, busId: '0000:07:00.0', reason: 'Unknown Error' }],
    // dfch/biz.dfch.LlmOps hardware/dell-7960t/recovery.md (newer drivers print the index)
    ['Unable to determine the device handle for GPU1: 0000:34:00.0: Unknown Error', { index: 1, busId: '0000:34:00.0', reason: 'Unknown Error' }],
  ])('%s', (line, want) => {
    expect(parseUnopenedGpu(line)).toEqual(want);
  });

  it.each(['0, GPU-a, NVIDIA A40, 46068, 46068, 00000000:1A:00.0, 525.125.06, 26, P8', 'No devices were found', ''])('ignores %j', (line) => {
    expect(parseUnopenedGpu(line)).toBeUndefined();
  });
});

describe('sameBusId', () => {
  it.each([
    ['0000:34:00.0', '00000000:34:00.0', true],
    ['00000000:ac:00.0', '00000000:AC:00.0', true],
    ['0000:34:00.0', '0000:35:00.0', false],
    ['0001:34:00.0', '0000:34:00.0', false],
    [undefined, '0000:34:00.0', false],
  ])('%s ~ %s → %s', (a, b, want) => {
    expect(sameBusId(a, b)).toBe(want);
  });
});

describe('withMissingGpus', () => {
  const before = fixtureGpus('rtxpro6000x4');
  const after = fixtureGpus('rtxpro6000x4-gpu1-lost');

  it('keeps a GPU nvidia-smi stopped listing, as unhealthy with its last bus id, in index order', () => {
    const merged = withMissingGpus(before, after);
    expect(merged.map((g) => g.id)).toEqual(['0', '1', '2', '3']);
    expect(merged[1]).toMatchObject({ id: '1', busId: '00000000:34:00.0', unhealthy: 'no longer listed by nvidia-smi (last seen at 00000000:34:00.0)' });
    expect(merged.filter((g) => g.unhealthy !== undefined).map((g) => g.id)).toEqual(['1']);
  });

  it('keeps the first reason on later refreshes, and forgets nothing that is listed again', () => {
    const once = withMissingGpus(before, after);
    expect(withMissingGpus(once, after)[1]?.unhealthy).toBe(once[1]?.unhealthy);
    expect(withMissingGpus(once, before)).toEqual(before);
  });

  it('drops a missing GPU whose id a listed GPU now has (the driver renumbered)', () => {
    const renumbered: GpuDevice[] = [{ ...before[2]!, id: '1', index: 1 }];
    expect(withMissingGpus([before[1]!], renumbered)).toEqual(renumbered);
  });

  it('matches by UUID before bus id', () => {
    const a: GpuDevice = { ...before[0]!, uuid: 'GPU-a' };
    const moved: GpuDevice = { ...a, busId: '00000000:99:00.0' };
    expect(withMissingGpus([a], [moved])).toEqual([moved]);
  });
});

describe('gpuInventoryUpdate', () => {
  const healthy = fixtureGpus('rtxpro6000x4');
  const lost = fixtureGpus('rtxpro6000x4-gpu1-lost');
  const labels = ['gpu', 'gpu-rtx-pro-6000-blac'];
  it.each<[string, GpuDevice[], GpuDevice[], { placementChanged: boolean; healthChanged: boolean; turnedUnhealthy: string[]; recovered: string[] }]>([
    ['nothing changed', healthy, healthy, { placementChanged: false, healthChanged: false, turnedUnhealthy: [], recovered: [] }],
    ['a GPU drops out of the list', healthy, lost, { placementChanged: true, healthChanged: true, turnedUnhealthy: ['1'], recovered: [] }],
    ['it comes back', withMissingGpus(healthy, lost), healthy, { placementChanged: true, healthChanged: true, turnedUnhealthy: [], recovered: ['1'] }],
    ['still missing: no news', withMissingGpus(healthy, lost), lost, { placementChanged: false, healthChanged: false, turnedUnhealthy: [], recovered: [] }],
    ['free memory moved only', healthy, healthy.map((g) => ({ ...g, vramFreeMb: 1 })), { placementChanged: false, healthChanged: false, turnedUnhealthy: [], recovered: [] }],
  ])('%s', (_what, before, fresh, want) => {
    const u = gpuInventoryUpdate({ gpus: before, hardwareLabels: labels }, { gpus: fresh, hardwareLabels: labels });
    expect({ placementChanged: u.placementChanged, healthChanged: u.healthChanged, turnedUnhealthy: u.turnedUnhealthy.map((g) => g.id), recovered: u.recovered.map((g) => g.id) }).toEqual(want);
  });

  it('a reason that changes is news for health, not for placement', () => {
    const a = healthy.map((g) => (g.id === '0' ? { ...g, unhealthy: 'x' } : g));
    const b = healthy.map((g) => (g.id === '0' ? { ...g, unhealthy: 'y' } : g));
    const u = gpuInventoryUpdate({ gpus: a, hardwareLabels: labels }, { gpus: b, hardwareLabels: labels });
    expect([u.placementChanged, u.healthChanged, u.turnedUnhealthy.map((g) => g.id)]).toEqual([false, true, ['0']]);
  });
});
