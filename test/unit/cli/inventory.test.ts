import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createInventoryCommand, type GpuAllocation } from '../../../src/cli/inventory.js';
import type { CliIo } from '../../../src/cli/io.js';
import { AgentError, ErrorCodes } from '../../../src/errors.js';
import type { ReadInventoryOptions } from '../../../src/host/inventory.js';
import { hardwareLabels } from '../../../src/host/labels.js';
import type { HostInventory } from '../../../src/host/types.js';
import { fixtureGpus } from '../../fixtures/hosts/gpu-devices.js';
import type { FixtureHost } from '../../fixtures/hosts/gpu-devices.js';

function inventoryOf(host: FixtureHost): HostInventory {
  const gpus = fixtureGpus(host);
  return {
    gpus,
    cpu: { model: 'AMD EPYC 7R13 Processor', cores: 96 },
    memoryBytes: 2 * 1024 ** 4,
    platformArch: 'linux/amd64',
    hardwareLabels: hardwareLabels(gpus),
    gpuSource: gpus.length > 0 ? 'systeminformation' : 'none',
  };
}

function io(env: Record<string, string | undefined> = {}) {
  let out = '';
  let err = '';
  const value: CliIo = {
    stdout: { write: (c: string) => (out += c) },
    stderr: { write: (c: string) => (err += c) },
    stdin: new PassThrough(),
    env,
    cwd: '/',
  };
  return { io: value, out: () => out, err: () => err };
}

function command(result: HostInventory | Error, allocations: GpuAllocation[] | string = []) {
  const calls: ReadInventoryOptions[] = [];
  const run = createInventoryCommand({
    readInventory: async (options) => {
      calls.push(options);
      if (result instanceof Error) throw result;
      return result;
    },
    allocations: async () => allocations,
  });
  return { run, calls };
}

describe('cyberun-agent inventory', () => {
  it('shows each GPU’s health, and why an unhealthy one is (rtxpro6000x4 with GPU 1 lost)', async () => {
    const lost = inventoryOf('rtxpro6000x4');
    lost.gpus = lost.gpus.map((g) => (g.id === '1' ? { ...g, unhealthy: 'nvidia-smi cannot open it: Unknown Error' } : g));
    const t = io();
    expect(await command(lost).run([], t.io)).toBe(0);
    expect(t.out()).toMatch(/\n1 +NVIDIA RTX PRO 6000 Blac\.\.\. +97887 MiB +97885 MiB +00000000:34:00\.0 +UNHEALTHY +free\n/);
    expect(t.out()).toMatch(/\n0 +.* healthy +free\n/);
    expect(t.out()).toContain('GPU 1 is unhealthy: nvidia-smi cannot open it: Unknown Error\n');
    const json = io();
    expect(await command(lost).run(['--json'], json.io)).toBe(0);
    expect((JSON.parse(json.out()) as { gpus: { id: string; unhealthy?: string }[] }).gpus.map((g) => g.unhealthy ?? null)).toEqual([null, 'nvidia-smi cannot open it: Unknown Error', null, null]);
  });

  it('prints a table of GPUs and the labels', async () => {
    const { run, calls } = command(inventoryOf('a100x4'), [
      { gpuId: '1', serviceSlug: 'llama', replica: '0', containerState: 'running' },
      { gpuId: '2', serviceSlug: 'llama', replica: '1', containerState: 'exited' },
    ]);
    const t = io({ PATH: '/x' });
    expect(await run([], t.io)).toBe(0);
    expect(calls).toEqual([{ detect: 'auto', timeoutMs: 15_000, env: { PATH: '/x' } }]);
    expect(t.out()).toBe(
      [
        'GPUs (source: systeminformation)',
        'INDEX  MODEL                  VRAM TOTAL  VRAM FREE  BUS ID            HEALTH   HELD BY',
        '0      NVIDIA A100-SXM4-40GB  40960 MiB   37364 MiB  00000000:01:00.0  healthy  free',
        '1      NVIDIA A100-SXM4-40GB  40960 MiB   37376 MiB  00000000:41:00.0  healthy  llama/0 (running)',
        '2      NVIDIA A100-SXM4-40GB  40960 MiB   37372 MiB  00000000:81:00.0  healthy  llama/1 (exited)',
        '3      NVIDIA A100-SXM4-40GB  40960 MiB   37376 MiB  00000000:C1:00.0  healthy  free',
        '',
        'CPU       AMD EPYC 7R13 Processor (96 cores)',
        'Memory    2048.0 GiB',
        'Platform  linux/amd64',
        'Labels    gpu, gpu-a100',
        '',
      ].join('\n'),
    );
    expect(t.err()).toBe('');
  });

  it('says so on a host without GPUs', async () => {
    const { run } = command(inventoryOf('nogpu'));
    const t = io();
    expect(await run([], t.io)).toBe(0);
    expect(t.out()).toMatch(/^GPUs: none \(source: none\)\n/);
    expect(t.out()).toMatch(/\nLabels {4}\(none\)\n$/);
  });

  it('merges CYBERUN_AGENT_LABELS into the labels', async () => {
    const { run } = command(inventoryOf('rtx4090x1'));
    const t = io({ CYBERUN_AGENT_LABELS: 'zone-eu, gpu,,rack-7' });
    expect(await run([], t.io)).toBe(0);
    expect(t.out()).toContain('Labels    gpu, gpu-rtx-4090, rack-7, zone-eu\n');
  });

  it('--json prints the inventory plus merged labels', async () => {
    const inventory = inventoryOf('h100x8');
    const { run } = command(inventory);
    const t = io({ CYBERUN_AGENT_LABELS: 'zone-us' });
    expect(await run(['--json'], t.io)).toBe(0);
    const parsed = JSON.parse(t.out()) as HostInventory & { labels: string[] };
    expect(parsed.labels).toEqual(['gpu', 'gpu-h100', 'zone-us']);
    expect(parsed.gpus).toHaveLength(8);
    expect(parsed.gpus[7]).toEqual(JSON.parse(JSON.stringify(inventory.gpus[7])));
    expect(parsed.hardwareLabels).toEqual(['gpu', 'gpu-h100']);
    expect(parsed.gpuSource).toBe('systeminformation');
  });

  it('says why allocations are unknown when the engine cannot be asked', async () => {
    const { run } = command(inventoryOf('a100x4'), 'allocations unavailable: no Docker Engine');
    const t = io();
    expect(await run([], t.io)).toBe(0);
    expect(t.out()).toContain('(allocations unavailable: no Docker Engine)');
    expect(t.out()).toMatch(/C1:00\.0 {2}healthy {2}\?\n/);
  });

  it('exits 1 with the message when the inventory cannot be read', async () => {
    const { run } = command(new AgentError(ErrorCodes.INVENTORY_FAILED, 'systeminformation.cpu() did not answer within 15000 ms'));
    const t = io();
    expect(await run([], t.io)).toBe(1);
    expect(t.err()).toBe('inventory failed: systeminformation.cpu() did not answer within 15000 ms\n');
    expect(t.out()).toBe('');
  });

  it.each([[['--yaml']], [['extra']]])('exits 2 on unknown arguments %j', async (args) => {
    const { run, calls } = command(inventoryOf('h100x8'));
    const t = io();
    expect(await run(args, t.io)).toBe(2);
    expect(t.err()).toContain('usage: cyberun-agent inventory [--json]');
    expect(calls).toEqual([]);
  });
});
