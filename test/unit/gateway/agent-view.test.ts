import { describe, expect, it } from 'vitest';

import { deviceType, gpuDeviceRecord, mibToBytes } from '../../../src/gateway/agent-view.js';
import { gpuDevicesWire } from '../../../src/tunnel/agent-frames.js';
import { fixtureGpus, type FixtureHost } from '../../fixtures/hosts/gpu-devices.js';

describe('agent view: the tunnel’s GPU fields in Cyberun’s units', () => {
  // Captured nvidia-smi memory.total (MiB) of each fixture host, and the bytes the API shows.
  it.each<[FixtureHost, string, number, number]>([
    ['rtx4090x1', 'NVIDIA GeForce RTX 4090', 1, 24564 * 1048576],
    ['a100x4', 'NVIDIA A100-SXM4-40GB', 4, 42_949_672_960],
    ['h100x8', 'NVIDIA H100 80GB HBM3', 8, 81559 * 1048576],
    ['nogpu', '', 0, 0],
  ])('%s: the agent’s wire devices become %s ×%i with vram in bytes', (host, name, count, totalBytes) => {
    const wire = gpuDevicesWire({ gpus: fixtureGpus(host), platformArch: 'linux/amd64' });
    const records = wire.map(gpuDeviceRecord);
    expect(records).toHaveLength(count);
    for (const [i, record] of records.entries()) {
      const gpu = fixtureGpus(host)[i]!;
      expect(record).toEqual({
        device_name: name,
        device_type: 'cuda',
        vram_total: totalBytes,
        vram_free: gpu.vramFreeMb! * 1048576,
      });
      expect(Number.isSafeInteger(record.vram_total)).toBe(true);
    }
  });

  it.each<[number | null, number | null]>([
    [null, null],
    [0, 0],
    [1, 1_048_576],
    [24576, 25_769_803_776], // Cyberun's reference example: a 24 GiB card
    [0.5, 524_288],
    [1e-7, 0], // whole bytes
  ])('mibToBytes(%s) = %s', (mib, bytes) => {
    expect(mibToBytes(mib)).toBe(bytes);
  });

  it.each([
    ['nvidia', 'cuda'],
    ['NVIDIA', 'cuda'],
    ['cuda', 'cuda'], // an agent already sending Cyberun's name
    ['amd', 'amd'], // no public name to map to: passed through, not guessed
  ])('device_type %s → %s', (wire, api) => {
    expect(deviceType(wire)).toBe(api);
  });
});
