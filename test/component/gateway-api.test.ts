import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetch } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { startGateway, type Gateway } from '../../src/gateway/gateway-server.js';
import { silentLogger } from '../../src/log.js';

const SK = 'sk-test-integration-key-kkk';
const DK = 'dk-test-device-key-kkkkkkkk';
const AK = 'ak-test-agent-key-kkkkkkkkk';

/** The create example: every documented field. */
const createExample = {
  service_slug: 'llama-3-8b-instruct',
  display_name: 'Llama 3 8B Instruct',
  service_desc: 'vLLM OpenAI-compatible server',
  service_type: 'deployed',
  docker_image: 'vllm/vllm-openai:latest',
  exposed_port: 8000,
  health_path: '/health',
  env_config: [{ env_name: 'HF_TOKEN', env_value: 'hf_secret' }],
  volume_config: [{ host_path: '/data/models', container_path: '/root/.cache/huggingface' }],
  required_labels: ['gpu'],
  gpu_count: 1,
  replica_count: 1,
  usage_prompt: 'OpenAI chat completions at /v1/chat/completions',
  openapi_url: '/openapi.json',
};

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

function client(gateway: () => Gateway) {
  return async (method: string, path: string, body?: unknown, key: string | null = SK): Promise<Reply> => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (key !== null) headers.authorization = `Bearer ${key}`;
    const res = await fetch(`${gateway().url}/api/v1${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
}

describe('local gateway REST API', () => {
  let dataDir: string;
  let gateway: Gateway;
  const api = client(() => gateway);
  const start = async (): Promise<Gateway> =>
    startGateway({ port: 0, dataDir, apiKeys: [SK, DK], agentKeys: [AK], logger: silentLogger() });

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cyberun-gw-'));
    gateway = await start();
  });
  afterEach(async () => {
    await gateway.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const total = async (): Promise<number> => ((await api('GET', '/containers')).body.page_meta as { total_count: number }).total_count;

  it('creates the documented example and reads it back', async () => {
    const created = await api('POST', '/containers', createExample);
    expect(created.status).toBe(200);
    expect(Object.keys(created.body)).toEqual(['id']);
    expect(created.body.id).toMatch(/^[0-9a-f-]{36}$/);

    const one = await api('GET', `/containers/${String(created.body.id)}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ ...createExample, id: created.body.id, service_status: 'created' });
    expect(typeof one.body.created_at).toBe('string');

    const runtime = await api('GET', `/r/containers/${createExample.service_slug}`);
    expect(runtime.body).toMatchObject({ id: created.body.id, service_type: 'deployed', service_status: 'created' });
    expect(runtime.body.status_detail).toEqual({ reason: null, desired_replicas: 0, ready_replicas: 0, agents: [] });
  });

  it('applies the defaults of a minimal body', async () => {
    const { body } = await api('POST', '/containers', { service_slug: 'min-svc', display_name: 'Min', docker_image: 'busybox:1' });
    const one = await api('GET', `/containers/${String(body.id)}`);
    expect(one.body).toMatchObject({ service_type: 'deployed', exposed_port: 8080, health_path: '/health', gpu_count: 0, replica_count: 1 });
  });

  const invalid: [string, unknown, RegExp][] = [
    ['empty body', '', /JSON object/],
    ['not JSON', '{"service_slug": ', /not valid JSON/],
    ['an array', [createExample], /JSON object/],
    ['missing service_slug', { ...createExample, service_slug: undefined }, /service_slug/],
    ['slug too short', { ...createExample, service_slug: 'ab' }, /service_slug/],
    ['slug with uppercase', { ...createExample, service_slug: 'Llama' }, /service_slug/],
    ['slug ending in a hyphen', { ...createExample, service_slug: 'llama-' }, /service_slug/],
    ['missing display_name', { ...createExample, display_name: undefined }, /display_name/],
    ['display_name too long', { ...createExample, display_name: 'x'.repeat(256) }, /display_name/],
    ['unknown service_type', { ...createExample, service_type: 'serverless' }, /service_type/],
    ['deployed without docker_image', { ...createExample, docker_image: undefined }, /docker_image/],
    ['external without external_url', { service_slug: 'ext-a', display_name: 'E', service_type: 'external' }, /external_url/],
    ['external over http', { service_slug: 'ext-a', display_name: 'E', service_type: 'external', external_url: 'http://api.example.com' }, /external_url/],
    ['exposed_port 0', { ...createExample, exposed_port: 0 }, /exposed_port/],
    ['exposed_port 70000', { ...createExample, exposed_port: 70000 }, /exposed_port/],
    ['exposed_port as a string', { ...createExample, exposed_port: '8000' }, /exposed_port/],
    ['replica_count 0', { ...createExample, replica_count: 0 }, /replica_count/],
    ['replica_count 11', { ...createExample, replica_count: 11 }, /replica_count/],
    ['gpu_count -2', { ...createExample, gpu_count: -2 }, /gpu_count/],
    ['gpu_count 1.5', { ...createExample, gpu_count: 1.5 }, /gpu_count/],
    ['env_config entry without env_name', { ...createExample, env_config: [{ env_value: 'x' }] }, /env_config\[0\]\.env_name/],
    ['volume_config not an array', { ...createExample, volume_config: { host_path: '/a' } }, /volume_config/],
    ['required_labels with a number', { ...createExample, required_labels: ['gpu', 7] }, /required_labels\[1\]/],
    ['external_auth_credential_id not a uuid', { service_slug: 'ext-a', display_name: 'E', service_type: 'external', external_url: 'https://a.example.com', external_auth_credential_id: 'cred-1' }, /external_auth_credential_id/],
    ['openapi_url too long', { ...createExample, openapi_url: `/${'a'.repeat(600)}` }, /openapi_url/],
    ['unknown field', { ...createExample, gpu_type: 'h100' }, /gpu_type/],
  ];

  it.each(invalid)('refuses %s with 400 naming the field, storing nothing', async (_name, body, field) => {
    const reply = await api('POST', '/containers', body);
    expect(reply.status).toBe(400);
    expect(reply.body.error_message).toMatch(field);
    expect(await total()).toBe(0);
  });

  it('refuses a duplicate slug with 409', async () => {
    expect((await api('POST', '/containers', createExample)).status).toBe(200);
    const dup = await api('POST', '/containers', { ...createExample, display_name: 'Another' });
    expect(dup.status).toBe(409);
    expect(dup.body.error_message).toMatch(/service_slug "llama-3-8b-instruct" is already used/);
    expect(await total()).toBe(1);
  });

  it('refuses an oversized body with 413', async () => {
    const reply = await api('POST', '/containers', { ...createExample, service_desc: 'x'.repeat(1024 * 1024 + 1) });
    expect(reply.status).toBe(413);
    expect(await total()).toBe(0);
  });

  describe('update', () => {
    let id: string;
    beforeEach(async () => {
      id = String((await api('POST', '/containers', createExample)).body.id);
    });

    it('changes given fields, keeps omitted ones, bumps updated_at', async () => {
      const before = await api('GET', `/containers/${id}`);
      await new Promise((r) => setTimeout(r, 5));
      const reply = await api('PUT', `/containers/${id}`, { display_name: 'Renamed', replica_count: 2 });
      expect(reply).toEqual({ status: 200, body: { id } });
      const after = await api('GET', `/containers/${id}`);
      expect(after.body).toMatchObject({ display_name: 'Renamed', replica_count: 2, docker_image: createExample.docker_image, gpu_count: 1 });
      expect(after.body.created_at).toBe(before.body.created_at);
      expect(after.body.updated_at).not.toBe(before.body.updated_at);
    });

    it.each([
      ['service_slug', { service_slug: 'other-slug' }],
      ['service_type', { service_type: 'external' }],
      ['external_url', { external_url: 'https://api.example.com' }],
      ['replica_count', { replica_count: 50 }],
    ])('refuses %s and changes nothing', async (field, body) => {
      const reply = await api('PUT', `/containers/${id}`, body);
      expect(reply.status).toBe(400);
      expect(reply.body.error_message).toMatch(new RegExp(field));
      expect((await api('GET', `/containers/${id}`)).body).toMatchObject(createExample);
    });

    it('is refused with 409 while deploying and allowed again once stopped', async () => {
      expect((await api('POST', `/containers/${id}/deploy`)).body).toEqual({ is_success: true });
      expect((await api('GET', `/containers/${id}`)).body.service_status).toBe('deploying');
      const busy = await api('PUT', `/containers/${id}`, { display_name: 'Nope' });
      expect(busy.status).toBe(409);
      expect(busy.body.error_message).toMatch(/deploying/);
      expect((await api('POST', `/containers/${id}/undeploy`)).body).toEqual({ is_success: true });
      expect((await api('GET', `/containers/${id}`)).body.service_status).toBe('stopped');
      expect((await api('PUT', `/containers/${id}`, { display_name: 'Now' })).status).toBe(200);
    });

    it('answers 404 for an unknown id', async () => {
      const reply = await api('PUT', '/containers/00000000-0000-4000-8000-00000000dead', { display_name: 'x' });
      expect(reply.status).toBe(404);
    });
  });

  it('deletes only created or stopped services', async () => {
    const id = String((await api('POST', '/containers', createExample)).body.id);
    await api('POST', `/containers/${id}/deploy`);
    expect((await api('DELETE', `/containers/${id}`)).status).toBe(409);
    await api('POST', `/containers/${id}/undeploy`);
    expect(await api('DELETE', `/containers/${id}`)).toEqual({ status: 200, body: { is_success: true } });
    expect((await api('GET', `/containers/${id}`)).status).toBe(404);
    expect((await api('GET', `/r/containers/${createExample.service_slug}`)).status).toBe(404);
  });

  it('paginates lists with page_meta', async () => {
    for (let i = 0; i < 25; i++) {
      expect((await api('POST', '/containers', { service_slug: `svc-${String(i).padStart(2, '0')}`, display_name: `S${i}`, docker_image: 'busybox:1' })).status).toBe(200);
    }
    const first = await api('GET', '/containers');
    expect(first.body.page_meta).toEqual({ current_page: 1, per_page: 20, total_count: 25 });
    expect((first.body.data as unknown[]).length).toBe(20);
    const second = await api('GET', '/containers?current_page=2&per_page=20');
    expect((second.body.data as { service_slug: string }[]).map((s) => s.service_slug)).toEqual(['svc-20', 'svc-21', 'svc-22', 'svc-23', 'svc-24']);
    const small = await api('GET', '/r/containers?per_page=3&current_page=3');
    expect(small.body.page_meta).toEqual({ current_page: 3, per_page: 3, total_count: 25 });
    expect((small.body.data as { service_slug: string }[])[0]?.service_slug).toBe('svc-06');
    expect((await api('GET', '/containers?per_page=101')).body.error_message).toMatch(/per_page/);
    expect((await api('GET', '/containers?current_page=0')).status).toBe(400);
    expect((await api('GET', '/agents?per_page=abc')).status).toBe(400);
    expect((await api('GET', '/agents')).body).toEqual({ agent_list: [], page_meta: { current_page: 1, per_page: 20, total_count: 0 } });
    expect((await api('GET', '/r/agents')).body).toEqual({ agent_list: [], page_meta: { current_page: 1, per_page: 20, total_count: 0 } });
    expect((await api('GET', '/r/agents?per_page=101')).body).toEqual({ error_message: 'per_page 101 must be an integer from 1 to 100' });
  });

  it.each([
    ['no Authorization header', null, 401, /Authorization/],
    ['an agent key', AK, 403, /agent keys \(ak-…\)/],
    ['a wrong sk- key', 'sk-wrong-kkkkkkkkkkkkkkkkkk', 401, /invalid API key/],
    ['a user JWT', 'eyJhbGciOiJIUzI1NiJ9.e30.sig', 401, /only sk- integration keys and dk- device keys/],
  ])('refuses %s', async (_name, key, status, message) => {
    const reply = await api('GET', '/containers', undefined, key);
    expect(reply.status).toBe(status);
    expect(reply.body.error_message).toMatch(message);
    expect((await api('POST', '/containers', createExample, key)).status).toBe(status);
    expect(await total()).toBe(0);
  });

  it('accepts dk- device keys', async () => {
    expect((await api('GET', '/containers', undefined, DK)).status).toBe(200);
  });

  it('answers 409 on the proxy and invoke endpoints of a service that is not deployed, 404/405 elsewhere', async () => {
    await api('POST', '/containers', createExample);
    const proxy = await api('GET', `/r/containers/${createExample.service_slug}/v1/models`);
    expect(proxy.status).toBe(409);
    expect(proxy.body.error_message).toMatch(/require a running service/);
    expect((await api('POST', `/r/invoke/${createExample.service_slug}`, { method: 'GET', path: '/' })).status).toBe(409);
    expect((await api('GET', '/nothing-here')).status).toBe(404);
    expect((await api('PATCH', '/containers')).status).toBe(405);
  });

  it('keeps everything across a restart with the same data dir', async () => {
    const id = String((await api('POST', '/containers', createExample)).body.id);
    await api('POST', `/containers/${id}/deploy`);
    const before = (await api('GET', `/containers/${id}`)).body;
    await gateway.close();
    gateway = await start();
    const after = await api('GET', `/containers/${id}`);
    expect(after.body).toEqual(before);
    const file = join(dataDir, 'services.json');
    expect(JSON.parse(await readFile(file, 'utf8')).services).toHaveLength(1);
    expect((await stat(file)).mode & 0o077).toBe(0);
  });
});

describe('gateway start', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cyberun-gw-'));
  });
  afterAll(async () => rm(dataDir, { recursive: true, force: true }));

  it('refuses a corrupt store instead of resetting it', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dataDir, 'services.json'), '{not json');
    await expect(startGateway({ port: 0, dataDir, apiKeys: [SK], agentKeys: [AK], logger: silentLogger() })).rejects.toMatchObject({
      code: 'AGENT_ERR_STATE_IO',
    });
  });
});
