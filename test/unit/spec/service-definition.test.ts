import { describe, expect, it } from 'vitest';

import { AgentError, ErrorCodes } from '../../../src/errors.js';
import {
  formatIssues,
  parseServiceDefinition,
  validateServiceDefinition,
  validateServiceUpdate,
} from '../../../src/spec/service-definition.js';
import type { ServiceDefinition } from '../../../src/spec/types.js';

const deployed = { service_slug: 'llm-svc', display_name: 'LLM', docker_image: 'vllm/vllm-openai:latest' };
const external = { service_slug: 'ext-api', display_name: 'Ext', service_type: 'external', external_url: 'https://api.example.com/v1' };
const UUID = '3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b';
const SECRET = 'sup3r-s3cret-t0ken';
const DIGEST = `sha256:${'a'.repeat(64)}`;

interface Row {
  name: string;
  input: unknown;
  /** Paths reported, in any order; [] = valid. */
  paths: string[];
}

const rows: Row[] = [
  // ---- valid ----
  { name: 'minimal deployed', input: deployed, paths: [] },
  { name: 'minimal external', input: external, paths: [] },
  { name: 'explicit service_type deployed', input: { ...deployed, service_type: 'deployed' }, paths: [] },
  { name: 'slug of 3 chars', input: { ...deployed, service_slug: 'abc' }, paths: [] },
  { name: 'slug of 100 chars', input: { ...deployed, service_slug: `a${'-'.repeat(98)}b` }, paths: [] },
  { name: 'slug with digits and inner hyphen', input: { ...deployed, service_slug: '0-9' }, paths: [] },
  { name: 'exposed_port 1', input: { ...deployed, exposed_port: 1 }, paths: [] },
  { name: 'exposed_port 65535', input: { ...deployed, exposed_port: 65535 }, paths: [] },
  { name: 'replica_count 1', input: { ...deployed, replica_count: 1 }, paths: [] },
  { name: 'replica_count 10', input: { ...deployed, replica_count: 10 }, paths: [] },
  { name: 'gpu_count -1 (all)', input: { ...deployed, gpu_count: -1 }, paths: [] },
  { name: 'gpu_count 0', input: { ...deployed, gpu_count: 0 }, paths: [] },
  { name: 'gpu_count 8', input: { ...deployed, gpu_count: 8 }, paths: [] },
  { name: 'display_name of 255 chars', input: { ...deployed, display_name: 'd'.repeat(255) }, paths: [] },
  { name: 'image: library name only', input: { ...deployed, docker_image: 'nginx' }, paths: [] },
  { name: 'image: registry, tag', input: { ...deployed, docker_image: 'ghcr.io/org/sub/repo:v1.2.3' }, paths: [] },
  { name: 'image: registry with port and digest', input: { ...deployed, docker_image: `localhost:5000/team/model@${DIGEST}` }, paths: [] },
  { name: 'image: tag and digest', input: { ...deployed, docker_image: `vllm/vllm-openai:v0.6@${DIGEST}` }, paths: [] },
  { name: 'image: separators _ __ . -', input: { ...deployed, docker_image: 'org/a_b__c.d--e' }, paths: [] },
  {
    name: 'null as absent for optional fields',
    input: {
      ...deployed,
      service_desc: null,
      usage_prompt: null,
      openapi_url: null,
      external_url: null,
      external_auth_credential_id: null,
      env_config: null,
      volume_config: null,
      required_labels: null,
    },
    paths: [],
  },
  { name: 'null docker_image on external', input: { ...external, docker_image: null }, paths: [] },
  { name: 'external with credential id', input: { ...external, external_auth_credential_id: UUID.toUpperCase() }, paths: [] },
  { name: 'external_url of 2048 chars', input: { ...external, external_url: `https://a.io/${'p'.repeat(2048 - 13)}` }, paths: [] },
  { name: 'env: underscore name, empty value', input: { ...deployed, env_config: [{ env_name: '_X1', env_value: '' }] }, paths: [] },
  { name: 'env: same name differing in case', input: { ...deployed, env_config: [{ env_name: 'a', env_value: '1' }, { env_name: 'A', env_value: '2' }] }, paths: [] },
  { name: 'volumes: host / (allowlist decides later)', input: { ...deployed, volume_config: [{ host_path: '/', container_path: '/data' }] }, paths: [] },
  { name: 'health_path with query, openapi_url', input: { ...deployed, health_path: '/v1/health?ready=1', openapi_url: '/openapi.json' }, paths: [] },
  { name: 'openapi_url of 500 chars', input: { ...deployed, openapi_url: `/${'o'.repeat(499)}` }, paths: [] },
  { name: 'required_labels', input: { ...deployed, required_labels: ['gpu', 'a100', 'gpu'] }, paths: [] },

  // ---- service_slug ----
  { name: 'slug of 2 chars', input: { ...deployed, service_slug: 'ab' }, paths: ['service_slug'] },
  { name: 'slug of 101 chars', input: { ...deployed, service_slug: 'a'.repeat(101) }, paths: ['service_slug'] },
  { name: 'slug uppercase', input: { ...deployed, service_slug: 'My-Svc' }, paths: ['service_slug'] },
  { name: 'slug leading hyphen', input: { ...deployed, service_slug: '-svc' }, paths: ['service_slug'] },
  { name: 'slug trailing hyphen', input: { ...deployed, service_slug: 'svc-' }, paths: ['service_slug'] },
  { name: 'slug underscore', input: { ...deployed, service_slug: 'my_svc' }, paths: ['service_slug'] },
  { name: 'slug missing', input: { display_name: 'x', docker_image: 'nginx' }, paths: ['service_slug'] },
  { name: 'slug a number', input: { ...deployed, service_slug: 123 }, paths: ['service_slug'] },
  { name: 'slug null', input: { ...deployed, service_slug: null }, paths: ['service_slug'] },
  // ---- display_name, descriptions ----
  { name: 'display_name missing', input: { service_slug: 'abc', docker_image: 'nginx' }, paths: ['display_name'] },
  { name: 'display_name of 256 chars', input: { ...deployed, display_name: 'd'.repeat(256) }, paths: ['display_name'] },
  { name: 'display_name blank', input: { ...deployed, display_name: '   ' }, paths: ['display_name'] },
  { name: 'display_name null', input: { ...deployed, display_name: null }, paths: ['display_name'] },
  { name: 'service_desc a number', input: { ...deployed, service_desc: 42 }, paths: ['service_desc'] },
  { name: 'usage_prompt an array', input: { ...deployed, usage_prompt: ['use me'] }, paths: ['usage_prompt'] },
  // ---- numbers ----
  { name: 'exposed_port 0', input: { ...deployed, exposed_port: 0 }, paths: ['exposed_port'] },
  { name: 'exposed_port 65536', input: { ...deployed, exposed_port: 65536 }, paths: ['exposed_port'] },
  { name: 'exposed_port 1.5', input: { ...deployed, exposed_port: 1.5 }, paths: ['exposed_port'] },
  { name: 'exposed_port "8080"', input: { ...deployed, exposed_port: '8080' }, paths: ['exposed_port'] },
  { name: 'exposed_port null', input: { ...deployed, exposed_port: null }, paths: ['exposed_port'] },
  { name: 'replica_count 0', input: { ...deployed, replica_count: 0 }, paths: ['replica_count'] },
  { name: 'replica_count 11', input: { ...deployed, replica_count: 11 }, paths: ['replica_count'] },
  { name: 'replica_count 1.5', input: { ...deployed, replica_count: 1.5 }, paths: ['replica_count'] },
  { name: 'replica_count true', input: { ...deployed, replica_count: true }, paths: ['replica_count'] },
  { name: 'gpu_count -2', input: { ...deployed, gpu_count: -2 }, paths: ['gpu_count'] },
  { name: 'gpu_count 0.5', input: { ...deployed, gpu_count: 0.5 }, paths: ['gpu_count'] },
  { name: 'gpu_count "1"', input: { ...deployed, gpu_count: '1' }, paths: ['gpu_count'] },
  { name: 'gpu_count null', input: { ...deployed, gpu_count: null }, paths: ['gpu_count'] },
  // ---- service_type and its conditions ----
  { name: 'service_type unknown', input: { ...deployed, service_type: 'internal' }, paths: ['service_type'] },
  { name: 'service_type wrong case', input: { ...deployed, service_type: 'Deployed' }, paths: ['service_type'] },
  { name: 'service_type null', input: { ...deployed, service_type: null }, paths: ['service_type'] },
  { name: 'deployed without docker_image', input: { service_slug: 'abc', display_name: 'x' }, paths: ['docker_image'] },
  { name: 'deployed with docker_image null', input: { ...deployed, docker_image: null }, paths: ['docker_image'] },
  { name: 'external without external_url', input: { service_slug: 'abc', display_name: 'x', service_type: 'external' }, paths: ['external_url'] },
  { name: 'external_url http://', input: { ...external, external_url: 'http://api.example.com' }, paths: ['external_url'] },
  { name: 'external_url of 2049 chars', input: { ...external, external_url: `https://a.io/${'p'.repeat(2049 - 13)}` }, paths: ['external_url'] },
  { name: 'external_url without host', input: { ...external, external_url: 'https://' }, paths: ['external_url'] },
  { name: 'external_url with credentials', input: { ...external, external_url: 'https://user:pw@api.example.com' }, paths: ['external_url'] },
  { name: 'external_url a number', input: { ...external, external_url: 443 }, paths: ['external_url'] },
  { name: 'external_url on deployed', input: { ...deployed, external_url: 'https://api.example.com' }, paths: ['external_url'] },
  { name: 'docker_image on external', input: { ...external, docker_image: 'nginx' }, paths: ['docker_image'] },
  { name: 'credential id not a uuid', input: { ...external, external_auth_credential_id: 'cred-1' }, paths: ['external_auth_credential_id'] },
  { name: 'credential id on deployed', input: { ...deployed, external_auth_credential_id: UUID }, paths: ['external_auth_credential_id'] },
  // ---- docker_image ----
  { name: 'image: uppercase repository', input: { ...deployed, docker_image: 'Vllm/vllm-openai:latest' }, paths: ['docker_image'] },
  { name: 'image: short digest', input: { ...deployed, docker_image: 'nginx@sha256:abc' }, paths: ['docker_image'] },
  { name: 'image: md5 digest', input: { ...deployed, docker_image: `nginx@md5:${'a'.repeat(32)}` }, paths: ['docker_image'] },
  { name: 'image: whitespace', input: { ...deployed, docker_image: 'vllm/vllm openai' }, paths: ['docker_image'] },
  { name: 'image: empty', input: { ...deployed, docker_image: '' }, paths: ['docker_image'] },
  { name: 'image: tag starting with -', input: { ...deployed, docker_image: 'nginx:-x' }, paths: ['docker_image'] },
  { name: 'image: empty path component', input: { ...deployed, docker_image: 'org//repo' }, paths: ['docker_image'] },
  { name: 'image: bad registry host', input: { ...deployed, docker_image: 'reg-.io/repo' }, paths: ['docker_image'] },
  { name: 'image: a number', input: { ...deployed, docker_image: 7 }, paths: ['docker_image'] },
  // ---- env_config ----
  { name: 'env_config an object', input: { ...deployed, env_config: { A: '1' } }, paths: ['env_config'] },
  { name: 'env entry a string', input: { ...deployed, env_config: ['A=1'] }, paths: ['env_config[0]'] },
  { name: 'env_name starting with a digit', input: { ...deployed, env_config: [{ env_name: '1A', env_value: 'x' }] }, paths: ['env_config[0].env_name'] },
  { name: 'env_name with a hyphen', input: { ...deployed, env_config: [{ env_name: 'MY-VAR', env_value: 'x' }] }, paths: ['env_config[0].env_name'] },
  { name: 'env_name empty', input: { ...deployed, env_config: [{ env_name: '', env_value: 'x' }] }, paths: ['env_config[0].env_name'] },
  { name: 'env_value a number', input: { ...deployed, env_config: [{ env_name: 'A', env_value: 1 }] }, paths: ['env_config[0].env_value'] },
  { name: 'env_value missing', input: { ...deployed, env_config: [{ env_name: 'A' }] }, paths: ['env_config[0].env_value'] },
  { name: 'env_value null', input: { ...deployed, env_config: [{ env_name: 'A', env_value: null }] }, paths: ['env_config[0].env_value'] },
  {
    name: 'duplicate env names',
    input: { ...deployed, env_config: [{ env_name: 'A', env_value: '1' }, { env_name: 'B', env_value: '2' }, { env_name: 'A', env_value: '3' }] },
    paths: ['env_config[2].env_name'],
  },
  { name: 'env entry with unknown key', input: { ...deployed, env_config: [{ env_name: 'A', value: 'x' }] }, paths: ['env_config[0].env_value', 'env_config[0].value'] },
  // ---- volume_config ----
  { name: 'volume_config a string', input: { ...deployed, volume_config: '/data:/data' }, paths: ['volume_config'] },
  { name: 'host_path relative', input: { ...deployed, volume_config: [{ host_path: 'data', container_path: '/data' }] }, paths: ['volume_config[0].host_path'] },
  { name: 'host_path not normalized', input: { ...deployed, volume_config: [{ host_path: '/data/../etc', container_path: '/data' }] }, paths: ['volume_config[0].host_path'] },
  { name: 'host_path with a colon', input: { ...deployed, volume_config: [{ host_path: '/data:ro', container_path: '/data' }] }, paths: ['volume_config[0].host_path'] },
  { name: 'container_path /', input: { ...deployed, volume_config: [{ host_path: '/data', container_path: '/' }] }, paths: ['volume_config[0].container_path'] },
  { name: 'container_path relative', input: { ...deployed, volume_config: [{ host_path: '/data', container_path: 'data' }] }, paths: ['volume_config[0].container_path'] },
  { name: 'container_path trailing slash', input: { ...deployed, volume_config: [{ host_path: '/data', container_path: '/data/' }] }, paths: ['volume_config[0].container_path'] },
  { name: 'container_path missing', input: { ...deployed, volume_config: [{ host_path: '/data' }] }, paths: ['volume_config[0].container_path'] },
  {
    name: 'duplicate container_path',
    input: { ...deployed, volume_config: [{ host_path: '/a', container_path: '/m' }, { host_path: '/b', container_path: '/m' }] },
    paths: ['volume_config[1].container_path'],
  },
  { name: 'volume entry with unknown key', input: { ...deployed, volume_config: [{ host_path: '/a', container_path: '/m', mode: 'ro' }] }, paths: ['volume_config[0].mode'] },
  // ---- required_labels, paths ----
  { name: 'required_labels a string', input: { ...deployed, required_labels: 'gpu' }, paths: ['required_labels'] },
  { name: 'required_labels with empty label', input: { ...deployed, required_labels: ['gpu', ''] }, paths: ['required_labels[1]'] },
  { name: 'required_labels with whitespace', input: { ...deployed, required_labels: ['nvidia a100'] }, paths: ['required_labels[0]'] },
  { name: 'required_labels with a number', input: { ...deployed, required_labels: [100] }, paths: ['required_labels[0]'] },
  { name: 'health_path relative', input: { ...deployed, health_path: 'health' }, paths: ['health_path'] },
  { name: 'health_path naming a host', input: { ...deployed, health_path: '//evil.example/x' }, paths: ['health_path'] },
  { name: 'health_path null', input: { ...deployed, health_path: null }, paths: ['health_path'] },
  { name: 'health_path with a space', input: { ...deployed, health_path: '/he alth' }, paths: ['health_path'] },
  { name: 'openapi_url relative', input: { ...deployed, openapi_url: 'openapi.json' }, paths: ['openapi_url'] },
  { name: 'openapi_url absolute URL', input: { ...deployed, openapi_url: 'https://x.io/openapi.json' }, paths: ['openapi_url'] },
  { name: 'openapi_url of 501 chars', input: { ...deployed, openapi_url: `/${'o'.repeat(500)}` }, paths: ['openapi_url'] },
  // ---- shape ----
  { name: 'unknown field replicas', input: { ...deployed, replicas: 2 }, paths: ['replicas'] },
  { name: 'two unknown fields', input: { ...deployed, port: 80, 'weird key': 1 }, paths: ['port', '["weird key"]'] },
  { name: 'root an array', input: [deployed], paths: ['(root)'] },
  { name: 'root null', input: null, paths: ['(root)'] },
  { name: 'root a string', input: 'llm-svc', paths: ['(root)'] },
  {
    name: 'type errors everywhere still run the cross-field rules',
    input: { service_slug: 5, display_name: null, service_type: 'external', docker_image: 'nginx', exposed_port: 1.5, env_config: 'A=1', volume_config: [7], required_labels: {} },
    paths: ['service_slug', 'display_name', 'docker_image', 'external_url', 'exposed_port', 'env_config', 'volume_config[0]', 'required_labels'],
  },
  {
    name: 'many problems at once',
    input: { service_slug: 'Bad_Slug', display_name: '', exposed_port: 0, replica_count: 11, gpu_count: -2, env_config: [{ env_name: 'A', env_value: 1 }], replicas: 1 },
    paths: ['service_slug', 'display_name', 'docker_image', 'exposed_port', 'env_config[0].env_value', 'gpu_count', 'replica_count', 'replicas'],
  },
];

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
