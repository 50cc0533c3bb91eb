import { mkdtempSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { readInventory as ReadInventory } from '../../../src/host/inventory.js';
import { FAKE_BIN_DIR, fixtureHostDir } from '../../fixtures/hosts/gpu-devices.js';
import type { FixtureHost } from '../../fixtures/hosts/gpu-devices.js';

/*
 * Runs the real readInventory (real systeminformation) against the fake nvidia-smi/lspci.
 *
 * systeminformation runs `lspci -vvv` through a shell with the *current* process.env, but runs
 * nvidia-smi with a copy of process.env taken when the module is first loaded
 * (util.execOptsWin). So PATH and CYBERUN_FAKE_GPU_HOST are set before the module is imported, and
 * CYBERUN_FAKE_GPU_HOST names a symlink that each case re-points at its fixture.
 * PATH holds only the fakes and a directory with `node` in it (for their `#!/usr/bin/env node`), so
 * no real lspci, nvidia-smi, dmidecode or clinfo of the test machine is ever consulted.
 */

let tmp: string;
let hostLink: string;
let nodeOnly: string;
let noLspci: string;
let fakePath: string;
let readInventory: typeof ReadInventory;
const saved = { PATH: process.env['PATH'], HOST: process.env['CYBERUN_FAKE_GPU_HOST'] };

function useHost(host: FixtureHost): void {
  rmSync(hostLink, { force: true });
  symlinkSync(fixtureHostDir(host), hostLink);
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cyberun-inventory-'));
  hostLink = join(tmp, 'host');
  nodeOnly = join(tmp, 'node-only');
  noLspci = join(tmp, 'no-lspci');
  mkdirSync(nodeOnly);
  mkdirSync(noLspci);
  symlinkSync(process.execPath, join(nodeOnly, 'node'));
  symlinkSync(join(FAKE_BIN_DIR, 'nvidia-smi'), join(noLspci, 'nvidia-smi'));
  useHost('nogpu');
  fakePath = `${FAKE_BIN_DIR}:${nodeOnly}`;
  process.env['PATH'] = fakePath;
  process.env['CYBERUN_FAKE_GPU_HOST'] = hostLink;
  ({ readInventory } = await import('../../../src/host/inventory.js'));
});

afterAll(() => {
  if (saved.PATH === undefined) delete process.env['PATH'];
  else process.env['PATH'] = saved.PATH;
  if (saved.HOST === undefined) delete process.env['CYBERUN_FAKE_GPU_HOST'];
  else process.env['CYBERUN_FAKE_GPU_HOST'] = saved.HOST;
  rmSync(tmp, { recursive: true, force: true });
});

function env(path: string): NodeJS.ProcessEnv {
  return { ...process.env, PATH: path, CYBERUN_FAKE_GPU_HOST: hostLink };
}

const hosts: {
  host: FixtureHost;
  source: string;
  models: string[];
  vramTotal: number[];
  vramFree: number[];
  busIds: string[];
  uuid0: string | undefined;
  driver: string | undefined;
  labels: string[];
}[] = [
  {
    host: 'h100x8',
    source: 'systeminformation',
    models: Array(8).fill('NVIDIA H100 80GB HBM3'),
    vramTotal: Array(8).fill(81559),
    vramFree: Array(8).fill(81559),
    busIds: ['53', '64', '75', '86', '97', 'A8', 'B9', 'CA'].map((b) => `00000000:${b}:00.0`),
    uuid0: 'GPU-20f8adb6-f7e2-5466-6cf5-d07abfe364a9',
    driver: '570.133.20',
    labels: ['gpu', 'gpu-h100'],
  },
  {
    host: 'a100x4',
    source: 'systeminformation',
    models: Array(4).fill('NVIDIA A100-SXM4-40GB'),
    vramTotal: Array(4).fill(40960),
    vramFree: [37364, 37376, 37372, 37376],
    busIds: ['01', '41', '81', 'C1'].map((b) => `00000000:${b}:00.0`),
    uuid0: 'GPU-60f8b643-1be5-1236-9fbf-ba5bcc98878f',
    driver: '550.163.01',
    labels: ['gpu', 'gpu-a100'],
  },
  {
    host: 'rtx4090x1',
    source: 'systeminformation',
    models: ['NVIDIA GeForce RTX 4090'],
    vramTotal: [24564],
    vramFree: [24564],
    busIds: ['00000000:01:00.0'],
    uuid0: undefined,
    driver: '580.95.05',
    labels: ['gpu', 'gpu-rtx-4090'],
  },
  {
    host: 'nogpu',
    source: 'none',
    models: [],
    vramTotal: [],
    vramFree: [],
    busIds: [],
    uuid0: undefined,
    driver: undefined,
    labels: [],
  },
];

describe('readInventory on captured hosts', () => {
  it.each(hosts)('$host: GPUs, VRAM, bus ids and labels', async (want) => {
    useHost(want.host);
    const inv = await readInventory({ detect: 'auto', timeoutMs: 20_000, env: env(fakePath) });
    expect(inv.gpuSource).toBe(want.source);
    expect(inv.gpus.map((g) => g.id)).toEqual(want.models.map((_, i) => String(i)));
    expect(inv.gpus.map((g) => g.index)).toEqual(want.models.map((_, i) => i));
    expect(inv.gpus.map((g) => g.model)).toEqual(want.models);
    expect(inv.gpus.map((g) => g.vramTotalMb)).toEqual(want.vramTotal);
    expect(inv.gpus.map((g) => g.vramFreeMb)).toEqual(want.vramFree);
    expect(inv.gpus.map((g) => g.busId)).toEqual(want.busIds);
    expect(inv.gpus.every((g) => g.vendor === 'NVIDIA')).toBe(true);
    expect(inv.gpus[0]?.uuid).toBe(want.uuid0);
    expect(inv.gpus[0]?.driverVersion).toBe(want.driver);
    expect(inv.hardwareLabels).toEqual(want.labels);
    expect(inv.cpu.cores).toBeGreaterThan(0);
    expect(inv.memoryBytes).toBeGreaterThan(0);
    expect(inv.platformArch).toMatch(/^linux\/[a-z0-9]+$/);
  });

  it('finds the GPUs through nvidia-smi alone where lspci is missing', async () => {
    useHost('a100x4');
    const path = `${noLspci}:${nodeOnly}`;
    process.env['PATH'] = path;
    try {
      const inv = await readInventory({ detect: 'auto', timeoutMs: 20_000, env: env(path) });
      expect(inv.gpuSource).toBe('nvidia-smi');
      expect(inv.gpus.map((g) => [g.id, g.model, g.vramTotalMb, g.busId])).toEqual([
        ['0', 'NVIDIA A100-SXM4-40GB', 40960, '00000000:01:00.0'],
        ['1', 'NVIDIA A100-SXM4-40GB', 40960, '00000000:41:00.0'],
        ['2', 'NVIDIA A100-SXM4-40GB', 40960, '00000000:81:00.0'],
        ['3', 'NVIDIA A100-SXM4-40GB', 40960, '00000000:C1:00.0'],
      ]);
      expect(inv.gpus.map((g) => g.uuid)).toEqual([
        'GPU-60f8b643-1be5-1236-9fbf-ba5bcc98878f',
        'GPU-a76e3d0c-39b2-42fa-505d-a0706f8ff474',
        'GPU-cf573fd2-b896-36cc-a736-547aed3dbe33',
        'GPU-c0098f64-c226-d8d2-9fa8-99e0f148739d',
      ]);
      expect(inv.hardwareLabels).toEqual(['gpu', 'gpu-a100']);
    } finally {
      process.env['PATH'] = fakePath;
    }
  });

  it('finds nothing, and does not throw, with neither lspci nor nvidia-smi', async () => {
    useHost('h100x8');
    process.env['PATH'] = nodeOnly;
    try {
      const inv = await readInventory({ detect: 'auto', timeoutMs: 20_000, env: env(nodeOnly) });
      expect(inv.gpus).toEqual([]);
      expect(inv.gpuSource).toBe('none');
      expect(inv.hardwareLabels).toEqual([]);
    } finally {
      process.env['PATH'] = fakePath;
    }
  });

  it('healthy captured hosts report every GPU healthy', async () => {
    for (const host of ['h100x8', 'rtxpro6000x4'] as const) {
      useHost(host);
      const inv = await readInventory({ detect: 'auto', timeoutMs: 20_000, env: env(fakePath) });
      expect(inv.gpus.length).toBeGreaterThan(0);
      expect(inv.gpus.filter((g) => g.unhealthy !== undefined)).toEqual([]);
    }
  });

  it('rtxpro6000x4-gpu1-lost: the GPU nvidia-smi cannot open stays in the inventory as unhealthy, under its index', async () => {
    useHost('rtxpro6000x4-gpu1-lost');
    const inv = await readInventory({ detect: 'auto', timeoutMs: 20_000, env: env(fakePath) });
    expect(inv.gpus.map((g) => [g.id, g.busId, g.unhealthy])).toEqual([
      ['0', '00000000:16:00.0', undefined],
      ['1', '0000:34:00.0', 'nvidia-smi cannot open it: Unknown Error'],
      ['2', '00000000:AC:00.0', undefined],
      ['3', '00000000:CA:00.0', undefined],
    ]);
    expect(inv.gpuSource).toBe('nvidia-smi');
    expect(inv.hardwareLabels).toEqual(['gpu', 'gpu-rtx-pro-6000-blac']);
  });

  it('a40x2-gpu0-err: a listed GPU reading ERR! is unhealthy, with no model label of its own', async () => {
    useHost('a40x2-gpu0-err');
    const inv = await readInventory({ detect: 'auto', timeoutMs: 20_000, env: env(fakePath) });
    expect(inv.gpus.map((g) => [g.id, g.model, g.unhealthy])).toEqual([
      ['0', 'unknown', 'nvidia-smi prints "Unknown Error" for name, temperature.gpu, pstate'],
      ['1', 'NVIDIA A40', undefined],
    ]);
    expect(inv.hardwareLabels).toEqual(['gpu', 'gpu-a40']);
  });

  it('skips GPU detection with detect: none', async () => {
    useHost('h100x8');
    const inv = await readInventory({ detect: 'none', timeoutMs: 20_000, env: env(fakePath) });
    expect(inv.gpus).toEqual([]);
    expect(inv.gpuSource).toBe('none');
    expect(inv.hardwareLabels).toEqual([]);
  });
});
