import { createHash } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { parseServiceDefinition } from '../../../src/service-definition/schema.js';
import { canonicalJson, containerSpecHash, specHash } from '../../../src/service-definition/spec-hash.js';
import type { ServiceDefinition } from '../../../src/service-definition/types.js';

const spec: ServiceDefinition = parseServiceDefinition({
  service_slug: 'llm-svc',
  display_name: 'LLM',
  docker_image: 'vllm/vllm-openai:v0.6.3',
  exposed_port: 8000,
  gpu_count: 2,
  env_config: [
    { env_name: 'MODEL', env_value: 'meta-llama/Llama-3-8B' },
    { env_name: 'HF_TOKEN', env_value: 'hf_x' },
  ],
  volume_config: [{ host_path: '/data/models', container_path: '/models' }],
});

describe('canonicalJson', () => {
  it('sorts keys recursively, keeps array order, drops undefined properties', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined }, e: 'x' })).toBe('{"a":{"d":[3,{"y":2,"z":1}]},"b":1,"e":"x"}');
  });

  it('writes undefined in arrays and non-finite numbers as null, like JSON.stringify', () => {
    expect(canonicalJson([undefined, Number.NaN, null])).toBe('[null,null,null]');
  });

  it.each([[10n], [() => 1], [Symbol('s')], [undefined]])('refuses %s', (value) => {
    expect(() => canonicalJson(value)).toThrow(TypeError);
  });

  it('refuses cycles but accepts shared references', () => {
    const shared = { a: 1 };
    expect(canonicalJson({ x: shared, y: shared })).toBe('{"x":{"a":1},"y":{"a":1}}');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(/cyclic/);
  });
});

describe('specHash', () => {
  it('is the sha256 hex of the canonical JSON', () => {
    const value = { b: [1, 2], a: 'x' };
    expect(specHash(value)).toBe(createHash('sha256').update('{"a":"x","b":[1,2]}').digest('hex'));
  });

  it('does not depend on key order', () => {
    expect(specHash({ a: 1, b: { c: 2, d: 3 } })).toBe(specHash({ b: { d: 3, c: 2 }, a: 1 }));
  });

  it('depends on array order', () => {
    expect(specHash({ a: [1, 2] })).not.toBe(specHash({ a: [2, 1] }));
  });
});

describe('containerSpecHash', () => {
  it('is 16 lowercase hex chars, pinned for this spec (a change restarts every replica on upgrade)', () => {
    expect(containerSpecHash(spec)).toMatch(/^[0-9a-f]{16}$/);
    // Computed independently over the hand-sorted text
    // {"docker_image":…,"env_config":[…],"exposed_port":8000,"gpu_count":2,"volume_config":[…]}.
    expect(containerSpecHash(spec)).toBe('8ac66f57612bea3b');
  });

  it('does not depend on the key order of the definition or its entries', () => {
    const reordered = Object.fromEntries(Object.entries(spec).reverse()) as unknown as ServiceDefinition;
    reordered.env_config = spec.env_config.map((e) => ({ env_value: e.env_value, env_name: e.env_name }));
    expect(containerSpecHash(reordered)).toBe(containerSpecHash(spec));
  });

  it.each<[string, Partial<ServiceDefinition>]>([
    ['display_name', { display_name: 'Renamed' }],
    ['service_desc', { service_desc: 'now with a description' }],
    ['usage_prompt', { usage_prompt: 'call /v1/chat/completions' }],
    ['openapi_url', { openapi_url: '/openapi.json' }],
    ['replica_count', { replica_count: 5 }],
    ['required_labels', { required_labels: ['a100'] }],
    ['health_path', { health_path: '/ready' }],
  ])('does not change with %s', (_field, change) => {
    expect(containerSpecHash({ ...spec, ...change })).toBe(containerSpecHash(spec));
  });

  it.each<[string, Partial<ServiceDefinition>]>([
    ['docker_image', { docker_image: 'vllm/vllm-openai:v0.6.4' }],
    ['env order', { env_config: [...spec.env_config].reverse() }],
    ['an env value', { env_config: [{ env_name: 'MODEL', env_value: 'other' }, { env_name: 'HF_TOKEN', env_value: 'hf_x' }] }],
    ['volume_config', { volume_config: [{ host_path: '/data/other', container_path: '/models' }] }],
    ['exposed_port', { exposed_port: 8001 }],
    ['gpu_count', { gpu_count: -1 }],
  ])('changes with %s', (_field, change) => {
    expect(containerSpecHash({ ...spec, ...change })).not.toBe(containerSpecHash(spec));
  });
});
