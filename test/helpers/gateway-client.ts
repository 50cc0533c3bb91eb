import { request } from 'undici';
import { waitFor } from './wait-for.js';

export interface ApiAnswer<T = Record<string, unknown>> {
  status: number;
  body: T;
}

/** A tiny client of the local gateway's REST API for e2e tests. */
export function gatewayClient(baseUrl: string, key: string) {
  async function call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> {
    const res = await request(`${baseUrl}/api/v1${path}`, {
      method: method as 'GET',
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: (text ? JSON.parse(text) : {}) as T };
  }
  return {
    call,
    create: (def: unknown) => call<{ id: string; error_message?: string }>('POST', '/containers', JSON.stringify(def)),
    deploy: (id: string) => call('POST', `/containers/${id}/deploy`),
    undeploy: (id: string) => call('POST', `/containers/${id}/undeploy`),
    update: (id: string, def: unknown) => call('PUT', `/containers/${id}`, def),
    runtime: (slug: string) => call<RuntimeRecord>('GET', `/r/containers/${slug}`),
    list: () => call<{ data: unknown[]; page_meta: { total_count: number } }>('GET', '/containers?per_page=100'),
    /** Create + deploy, then wait until the service is `running`; returns its id. */
    async deployRunning(def: { service_slug: string } & Record<string, unknown>, timeoutMs = 60_000): Promise<string> {
      const created = await call<{ id: string; error_message?: string }>('POST', '/containers', JSON.stringify(def));
      if (created.status !== 200) throw new Error(`create ${def.service_slug}: ${created.status} ${created.body.error_message ?? ''}`);
      const deployed = await call('POST', `/containers/${created.body.id}/deploy`);
      if (deployed.status !== 200) throw new Error(`deploy ${def.service_slug}: ${deployed.status} ${JSON.stringify(deployed.body)}`);
      await waitFor(`${def.service_slug} running`, async () => (await call<RuntimeRecord>('GET', `/r/containers/${def.service_slug}`)).body.service_status === 'running', timeoutMs, 200);
      return created.body.id;
    },
  };
}

export interface RuntimeRecord {
  id: string;
  service_slug: string;
  service_status: string;
  status_detail?: {
    reason: string | null;
    ready_replicas: number;
    agents: Array<{ agent_id: string; assigned_replicas: number; state: string | null; replicas: Array<{ index: number; phase: string; reason: string | null }> }>;
  };
  [key: string]: unknown;
}
