import { describe, expect, it } from 'vitest';
import { placementVerdict } from '../../../src/domain/placement.js';
import type { ServiceDefinition } from '../../../src/service-definition/types.js';
import { fixtureGpus } from '../../fixtures/hosts/gpu-devices.js';
import type { FixtureHost } from '../../fixtures/hosts/gpu-devices.js';

function deployed(overrides: Partial<ServiceDefinition> = {}): ServiceDefinition {
  return {
    service_slug: 'llama',
    display_name: 'Llama',
    service_type: 'deployed',
    docker_image: 'vllm/vllm-openai:latest',
    exposed_port: 8000,
    health_path: '/health',
    env_config: [],
    volume_config: [],
    required_labels: [],
    gpu_count: 0,
    replica_count: 1,
    ...overrides,
  };
}

function external(overrides: Partial<ServiceDefinition> = {}): ServiceDefinition {
  const { docker_image: _image, ...rest } = deployed({ service_type: 'external', external_url: 'https://api.example.com', ...overrides });
  return rest;
}

describe('placementVerdict', () => {
  it.each<[string, ServiceDefinition, string[], FixtureHost, { kind: string; reason?: string | RegExp }]>([
    ['no requirements, no GPUs', deployed(), [], 'nogpu', { kind: 'eligible' }],
    ['labels present', deployed({ required_labels: ['gpu', 'gpu-h100'] }), ['gpu', 'gpu-h100', 'zone-eu'], 'h100x8', { kind: 'eligible' }],
    [
      'one label missing, named',
      deployed({ required_labels: ['gpu', 'gpu-h100'] }),
      ['gpu', 'gpu-a100'],
      'a100x4',
      { kind: 'rejected', reason: 'missing required label gpu-h100 (this agent has: gpu, gpu-a100)' },
    ],
    [
      'several labels missing, all named',
      deployed({ required_labels: ['gpu', 'gpu-h100', 'zone-eu'] }),
      [],
      'nogpu',
      { kind: 'rejected', reason: 'missing required labels gpu, gpu-h100, zone-eu (this agent has: none)' },
    ],
    ['N fits', deployed({ gpu_count: 8 }), ['gpu'], 'h100x8', { kind: 'eligible' }],
    ['-1 on a GPU host', deployed({ gpu_count: -1 }), [], 'rtx4090x1', { kind: 'eligible' }],
    [
      'N > total says what the host has',
      deployed({ gpu_count: 5 }),
      ['gpu', 'gpu-a100'],
      'a100x4',
      { kind: 'rejected', reason: 'gpu_count 5 can never fit: this host has 4 GPUs (4x NVIDIA A100-SXM4-40GB)' },
    ],
    [
      '-1 on a GPU-less host',
      deployed({ gpu_count: -1 }),
      [],
      'nogpu',
      { kind: 'rejected', reason: 'gpu_count -1 asks for every GPU of the host, but this host has no GPUs' },
    ],
    [
      'N on a GPU-less host',
      deployed({ gpu_count: 2 }),
      [],
      'nogpu',
      { kind: 'rejected', reason: 'gpu_count 2 asks for 2 GPUs, but this host has no GPUs' },
    ],
    ['invalid count', deployed({ gpu_count: -3 }), [], 'h100x8', { kind: 'rejected', reason: /^gpu_count -3 is invalid/ }],
    ['labels are checked before GPUs', deployed({ gpu_count: 9, required_labels: ['x'] }), [], 'h100x8', { kind: 'rejected', reason: /^missing required label x/ }],
    ['external: eligible on labels alone, GPUs ignored', external({ gpu_count: 4, required_labels: ['edge'] }), ['edge'], 'nogpu', { kind: 'eligible' }],
    ['external: labels still required', external({ required_labels: ['edge'] }), [], 'h100x8', { kind: 'rejected', reason: 'missing required label edge (this agent has: none)' }],
  ])('%s', (_name, spec, labels, host, want) => {
    const verdict = placementVerdict(spec, labels, fixtureGpus(host));
    expect(verdict.kind).toBe(want.kind);
    if (want.reason !== undefined) {
      expect(verdict.kind === 'rejected' ? verdict.reason : undefined).toEqual(
        want.reason instanceof RegExp ? expect.stringMatching(want.reason) : want.reason,
      );
    }
  });
});
