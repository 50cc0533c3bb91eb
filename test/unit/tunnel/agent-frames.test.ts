import { describe, expect, it } from 'vitest';
import { buildHeartbeat, buildHello } from '../../../src/tunnel/agent-frames.js';
import { encodeFrame, healthyGpuCount, parseAgentFrame } from '../../../src/tunnel/protocol.js';
import { gpuDeviceRecord } from '../../../src/gateway/agent-view.js';
import { fixtureGpus } from '../../fixtures/hosts/gpu-devices.js';

// rtxpro6000x4 with GPU 1 lost, as the inventory reports rtxpro6000x4-gpu1-lost.
const LOST = 'nvidia-smi cannot open it: Unknown Error';
const gpus = fixtureGpus('rtxpro6000x4').map((g) => (g.id === '1' ? { ...g, unhealthy: LOST } : g));
const inventory = { gpus, platformArch: 'linux/amd64' };

describe('agent frames: GPU health', () => {
  const hello = buildHello({ agentId: 'a', agentVersion: '1', labels: ['gpu'], inventory, fallbackPlatformArch: 'linux/amd64', snapshot: [] });

  it('hello marks each GPU healthy or not, with the reason, and round-trips through the gateway’s parser', () => {
    expect(hello.gpu_devices.map((d) => [d.healthy, d.unhealthy_reason])).toEqual([
      [true, undefined],
      [false, LOST],
      [true, undefined],
      [true, undefined],
    ]);
    const parsed = parseAgentFrame(encodeFrame(hello));
    expect(parsed.ok && parsed.frame.type === 'hello' && healthyGpuCount(parsed.frame)).toBe(3);
  });

  it('a hello of an agent that sends no health (older) counts every GPU healthy', () => {
    const old = { ...hello, gpu_devices: hello.gpu_devices.map(({ device_name, device_type, vram_total, vram_free }) => ({ device_name, device_type, vram_total, vram_free })) };
    const parsed = parseAgentFrame(JSON.stringify(old));
    expect(parsed.ok && parsed.frame.type === 'hello' && healthyGpuCount(parsed.frame)).toBe(4);
  });

  it('heartbeat gpu_capacity counts healthy GPUs; devices keep all four', () => {
    const hb = buildHeartbeat([], inventory);
    expect(hb.gpu_capacity).toBe(3);
    expect(hb.gpu_devices).toHaveLength(4);
  });

  it('the REST record keeps Cyberun’s four fields (health is not in its reference shape)', () => {
    expect(Object.keys(gpuDeviceRecord(hello.gpu_devices[1]!)).sort()).toEqual(['device_name', 'device_type', 'vram_free', 'vram_total']);
  });
});
