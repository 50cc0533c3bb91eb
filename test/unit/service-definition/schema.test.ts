import { describe, expect, it } from 'vitest';

import { AgentError, ErrorCodes } from '../../../src/errors.js';
import { formatIssues } from '../../../src/service-definition/issue-text.js';
import { parseServiceDefinition, validateServiceDefinition } from '../../../src/service-definition/schema.js';
import { validateServiceUpdate } from '../../../src/service-definition/update-merge.js';
import type { ServiceDefinition } from '../../../src/service-definition/types.js';

import { deployed, external, rows, SECRET, UUID } from '../../fixtures/spec-cases.js';

describe('validateServiceDefinition', () => {
  it('has a table of at least 70 rows', () => {
    expect(rows.length).toBeGreaterThanOrEqual(70);
  });

  it.each(rows)('$name', ({ input, paths }) => {
    const result = validateServiceDefinition(input);
    const reported = result.ok ? [] : result.issues.map((issue) => issue.path);
    expect([...reported].sort()).toEqual([...paths].sort());
    if (!result.ok) {
      for (const issue of result.issues) {
        // Every message names its own path, so it reads alone in a log line or an API error.
        if (issue.path === '(root)') expect(issue.message).toMatch(/^the service definition /);
        else expect(issue.message.startsWith(issue.path)).toBe(true);
      }
    }
  });

  it('applies every default and returns exactly the normalized definition', () => {
    const result = validateServiceDefinition(deployed);
    expect(result).toEqual({
      ok: true,
      value: {
        service_slug: 'llm-svc',
        display_name: 'LLM',
        service_type: 'deployed',
        docker_image: 'vllm/vllm-openai:latest',
        exposed_port: 8080,
        health_path: '/health',
        env_config: [],
        volume_config: [],
        required_labels: [],
        gpu_count: 0,
        replica_count: 1,
      } satisfies ServiceDefinition,
    });
  });

  it('normalizes: labels deduplicated in order, uuid lowercased, empty text and nulls absent', () => {
    const result = validateServiceDefinition({
      ...external,
      required_labels: ['gpu', 'a100', 'gpu'],
      external_auth_credential_id: UUID.toUpperCase(),
      service_desc: '',
      usage_prompt: null,
      openapi_url: '',
      env_config: null,
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.required_labels).toEqual(['gpu', 'a100']);
    expect(result.value.external_auth_credential_id).toBe(UUID);
    expect(result.value.env_config).toEqual([]);
    expect('service_desc' in result.value && result.value.service_desc !== undefined).toBe(false);
    expect(result.value.usage_prompt).toBeUndefined();
    expect(result.value.openapi_url).toBeUndefined();
  });

  it('reports all issues at once, in field order', () => {
    const result = validateServiceDefinition(rows.at(-1)?.input);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map((issue) => issue.path)).toEqual([
      'service_slug',
      'display_name',
      'docker_image',
      'exposed_port',
      'env_config[0].env_value',
      'gpu_count',
      'replica_count',
      'replicas',
    ]);
  });

  it.each([
    ['service_slug', { ...deployed, service_slug: 'My-Svc' }, `service_slug "My-Svc" must match ^[a-z0-9][a-z0-9-]{1,98}[a-z0-9]$ (3–100 chars of a-z, 0-9, '-', not starting or ending with '-')`],
    ['replicas', { ...deployed, replicas: 2 }, 'replicas is not a known field (did you mean replica_count?): remove it'],
    ['docker_image', { service_slug: 'abc', display_name: 'x' }, /^docker_image is required for deployed services/],
    ['exposed_port', { ...deployed, exposed_port: '8080' }, /^exposed_port "8080" must be an integer from 1 to 65535/],
    ['display_name', { service_slug: 'abc', docker_image: 'nginx' }, /^display_name is required; it must be a string of 1–255 characters$/],
    ['docker_image', { ...deployed, docker_image: 'Vllm/x' }, /the repository must be lowercase/],
    ['volume_config[0].host_path', { ...deployed, volume_config: [{ host_path: '/data/../etc', container_path: '/d' }] }, /did you mean "\/etc"\?/],
    ['external_url', { ...external, external_url: 'http://u:pw@api.example.com' }, 'external_url "http://***@api.example.com" must start with https:// (plain http is refused)'],
    ['display_name', { ...deployed, display_name: 'd'.repeat(300) }, `display_name "${'d'.repeat(60)}…" (300 chars) must be at most 255 characters (got 300)`],
  ])('message for %s names the rule, the value and the fix', (path, input, expected) => {
    const result = validateServiceDefinition(input);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const issue = result.issues.find((i) => i.path === path);
    expect(issue?.message).toMatch(expected);
  });

  it.each([
    ['wrong type', [{ env_name: 'TOKEN', env_value: 12345678 }], '12345678'],
    ['unknown key', [{ env_name: 'TOKEN', value: SECRET }], SECRET],
    ['entry is a string', [`TOKEN=${SECRET}`], SECRET],
    ['list is an object', { TOKEN: SECRET }, SECRET],
    ['duplicate names', [{ env_name: 'TOKEN', env_value: SECRET }, { env_name: 'TOKEN', env_value: SECRET }], SECRET],
    ['NUL in value', [{ env_name: 'TOKEN', env_value: `${SECRET}\u0000` }], SECRET],
  ])('never echoes an env value (%s)', (_name, envConfig, secret) => {
    const result = validateServiceDefinition({ ...deployed, env_config: envConfig });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.length).toBeGreaterThan(0);
    expect(JSON.stringify(result.issues)).not.toContain(secret);
  });
});

describe('parseServiceDefinition / formatIssues', () => {
  it('returns the normalized definition when valid', () => {
    expect(parseServiceDefinition(deployed).exposed_port).toBe(8080);
  });

  it('throws SPEC_INVALID with every issue, one per line, and the issues as details', () => {
    const input = { service_slug: 'X', display_name: 'x', exposed_port: 0 };
    let caught: unknown;
    try {
      parseServiceDefinition(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AgentError);
    const err = caught as AgentError;
    expect(err.code).toBe(ErrorCodes.SPEC_INVALID);
    const issues = err.details?.issues as { path: string; message: string }[];
    expect(issues.map((i) => i.path)).toEqual(['service_slug', 'docker_image', 'exposed_port']);
    expect(err.message.split('\n')).toEqual(issues.map((i) => i.message));
    expect(formatIssues(issues)).toBe(err.message);
  });
});

describe('validateServiceUpdate', () => {
  const existingDeployed = parseServiceDefinition({
    ...deployed,
    service_desc: 'old',
    replica_count: 2,
    env_config: [{ env_name: 'A', env_value: '1' }],
    required_labels: ['gpu'],
  });
  const existingExternal = parseServiceDefinition({ ...external, external_auth_credential_id: UUID });

  it('keeps omitted fields and applies given ones', () => {
    const result = validateServiceUpdate({ replica_count: 4, docker_image: 'nginx:1.27' }, existingDeployed);
    expect(result).toEqual({ ok: true, value: { ...existingDeployed, replica_count: 4, docker_image: 'nginx:1.27' } });
  });

  it('treats null as omitted for optional fields, and "" / [] as clearing them', () => {
    const kept = validateServiceUpdate({ service_desc: null, env_config: null, required_labels: null }, existingDeployed);
    expect(kept).toEqual({ ok: true, value: existingDeployed });
    const cleared = validateServiceUpdate({ service_desc: '', env_config: [], required_labels: [] }, existingDeployed);
    expect(cleared.ok && cleared.value).toEqual({ ...existingDeployed, service_desc: undefined, env_config: [], required_labels: [] });
  });

  it.each([
    ['service_slug', { service_slug: 'llm-svc' }],
    ['service_type', { service_type: 'deployed' }],
    ['service_slug', { service_slug: null }],
  ])('refuses %s as immutable, even unchanged', (path, body) => {
    const result = validateServiceUpdate(body, existingDeployed);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map((i) => i.path)).toEqual([path]);
    expect(result.issues[0]?.message).toMatch(/is immutable/);
  });

  it.each([
    ['external_url on a deployed service', { external_url: 'https://x.io' }, existingDeployed, ['external_url']],
    ['credential on a deployed service', { external_auth_credential_id: UUID }, existingDeployed, ['external_auth_credential_id']],
    ['docker_image on an external service', { docker_image: 'nginx' }, existingExternal, ['docker_image']],
    ['unknown field', { replicas: 3 }, existingDeployed, ['replicas']],
    ['merged result out of range', { replica_count: 11, exposed_port: '80' }, existingDeployed, ['exposed_port', 'replica_count']],
    ['null for a defaulted field', { gpu_count: null }, existingDeployed, ['gpu_count']],
    ['everything at once', { service_type: 'external', external_url: 'https://x.io', replica_count: 0 }, existingDeployed, ['service_type', 'external_url', 'replica_count']],
    ['root not an object', [1], existingDeployed, ['(root)']],
  ])('refuses %s', (_name, body, existing, paths) => {
    const result = validateServiceUpdate(body, existing);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map((i) => i.path).sort()).toEqual([...paths].sort());
  });

  it('leaves the credential reference unchanged when omitted or null, replaces it when given', () => {
    for (const body of [{}, { external_auth_credential_id: null }]) {
      const result = validateServiceUpdate(body, existingExternal);
      expect(result.ok && result.value.external_auth_credential_id).toBe(UUID);
    }
    const other = '00000000-0000-4000-8000-000000000001';
    const replaced = validateServiceUpdate({ external_auth_credential_id: other, external_url: 'https://new.example.com' }, existingExternal);
    expect(replaced.ok && replaced.value).toEqual({ ...existingExternal, external_auth_credential_id: other, external_url: 'https://new.example.com' });
  });
});
