import { describe, expect, it } from 'vitest';
import { gpuModelLabel, hardwareLabels, mergeLabels } from '../../../src/host/labels.js';
import { fixtureGpus } from '../../fixtures/hosts/gpu-devices.js';

describe('gpuModelLabel', () => {
  it.each([
    ['NVIDIA H100 80GB HBM3', 'gpu-h100'],
    ['NVIDIA H100 PCIe', 'gpu-h100'],
    ['NVIDIA H100 NVL', 'gpu-h100'],
    ['NVIDIA H200', 'gpu-h200'],
    ['NVIDIA A100-SXM4-40GB', 'gpu-a100'],
    ['NVIDIA A100-SXM4-80GB', 'gpu-a100'],
    ['NVIDIA A100 80GB PCIe', 'gpu-a100'],
    ['NVIDIA GeForce RTX 4090', 'gpu-rtx-4090'],
    ['NVIDIA GeForce RTX 4090 D', 'gpu-rtx-4090-d'],
    ['NVIDIA L40S', 'gpu-l40s'],
    ['NVIDIA A10G', 'gpu-a10g'],
    ['NVIDIA A40', 'gpu-a40'],
    ['Tesla T4', 'gpu-t4'],
    ['Tesla V100-SXM2-32GB', 'gpu-v100'],
    ['NVIDIA RTX A6000', 'gpu-rtx-a6000'],
    ['NVIDIA GB200', 'gpu-gb200'],
    ['NVIDIA', undefined],
    ['', undefined],
  ])('%s → %s', (model, label) => {
    expect(gpuModelLabel(model)).toBe(label);
  });
});

describe('hardwareLabels', () => {
  it.each([
    ['h100x8', ['gpu', 'gpu-h100']],
    ['a100x4', ['gpu', 'gpu-a100']],
    ['rtx4090x1', ['gpu', 'gpu-rtx-4090']],
    ['nogpu', []],
  ] as const)('%s → %j', (host, labels) => {
    expect(hardwareLabels(fixtureGpus(host))).toEqual(labels);
  });

  it('labels every model of a mixed host once, sorted', () => {
    const gpus = [...fixtureGpus('rtx4090x1'), ...fixtureGpus('a100x4')];
    expect(hardwareLabels(gpus)).toEqual(['gpu', 'gpu-a100', 'gpu-rtx-4090']);
  });

  it('gives no gpu label for a device that is not NVIDIA', () => {
    const [gpu] = fixtureGpus('rtx4090x1');
    expect(hardwareLabels([{ ...gpu!, vendor: 'Intel Corporation', model: 'UHD Graphics 770' }])).toEqual([]);
  });
});

describe('mergeLabels', () => {
  it.each([
    [['gpu', 'gpu-h100'], [], ['gpu', 'gpu-h100']],
    [['gpu-h100', 'gpu'], ['zone-eu', 'gpu'], ['gpu', 'gpu-h100', 'zone-eu']],
    [[], [' rack-7 ', '', 'rack-7', 'a'], ['a', 'rack-7']],
  ])('%j + %j → %j', (hardware, configured, merged) => {
    expect(mergeLabels(hardware, configured)).toEqual(merged);
  });
});
