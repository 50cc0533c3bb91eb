import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import { formatIssues } from '../service-definition/issue-text.js';
import { validateServiceDefinition } from '../service-definition/schema.js';
import { validateServiceUpdate } from '../service-definition/update-merge.js';
import { fail, ok, paginate, parsePage, type HttpResult } from './http-io.js';
import type { Route, RouteContext } from './router.js';
import type { ServiceStore, StoredService } from './service-store.js';
import { runtimeRecord, serviceRecord, statusOf, type StatusSource } from './service-view.js';

export interface ContainerRoutesDeps {
  store: ServiceStore;
  status: StatusSource;
  logger: Logger;
  now: () => number;
}

const BASE = '/api/v1/containers';
const RUNTIME = '/api/v1/r/containers';

/**
 * The Cyberun container API (docs/gateway.md): management under /containers, runtime reads under
 * /r/containers. Every change is validated completely before the store is touched, so a refused
 * request stores nothing.
 */
export function containerRoutes(deps: ContainerRoutesDeps): Route[] {
  const { store, status } = deps;
  const iso = (): string => new Date(deps.now()).toISOString();

  const create = async (ctx: RouteContext): Promise<HttpResult> => {
    const body = await ctx.readBody();
    if (!body.ok) return body.result;
    const checked = validateServiceDefinition(body.value);
    if (!checked.ok) return fail(400, formatIssues(checked.issues));
    const definition = checked.value;
    return store.transact((current) => {
      if (current.some((s) => s.definition.service_slug === definition.service_slug)) {
        return { result: fail(409, `service_slug "${definition.service_slug}" is already used by another service in this team: choose another slug`) };
      }
      const at = iso();
      const record: StoredService = { id: randomUUID(), definition, lifecycle: 'created', createdAt: at, updatedAt: at, deployedAt: undefined };
      deps.logger.info({ serviceId: record.id, slug: definition.service_slug }, 'service created');
      return { result: ok({ id: record.id }), next: [...current, record] };
    });
  };

  const list = (ctx: RouteContext, view: typeof serviceRecord): HttpResult => {
    const page = parsePage(ctx.query);
    if (!page.ok) return page.result;
    return ok(paginate('data', store.list().map((s) => view(s, status)), page.page));
  };

  const getOne = (ctx: RouteContext): HttpResult => {
    const service = store.get(ctx.params.id ?? '');
    return service === undefined ? notFound(ctx.params.id) : ok(serviceRecord(service, status));
  };

  const update = async (ctx: RouteContext): Promise<HttpResult> => {
    const id = ctx.params.id ?? '';
    const existing = store.get(id);
    if (existing === undefined) return notFound(id);
    const body = await ctx.readBody();
    if (!body.ok) return body.result;
    const busy = refuseWhileBusy(existing, status, 'updated');
    if (busy !== undefined) return busy;
    const checked = validateServiceUpdate(body.value, existing.definition);
    if (!checked.ok) return fail(400, formatIssues(checked.issues));
    return store.transact((current) => {
      const target = current.find((s) => s.id === id);
      if (target === undefined) return { result: notFound(id) };
      const next = current.map((s) => (s.id === id ? { ...s, definition: checked.value, updatedAt: iso() } : s));
      deps.logger.info({ serviceId: id }, 'service updated');
      return { result: ok({ id }), next };
    });
  };

  const deploy = (ctx: RouteContext): Promise<HttpResult> => {
    const id = ctx.params.id ?? '';
    return store.transact((current) => {
      if (!current.some((s) => s.id === id)) return { result: notFound(id) };
      const next = current.map((s) => (s.id === id ? { ...s, lifecycle: 'deployed' as const, deployedAt: deps.now() } : s));
      deps.logger.info({ serviceId: id }, 'service deployed');
      return { result: ok({ is_success: true }), next };
    });
  };

  const undeploy = (ctx: RouteContext): Promise<HttpResult> => {
    const id = ctx.params.id ?? '';
    return store.transact((current) => {
      const target = current.find((s) => s.id === id);
      if (target === undefined) return { result: notFound(id) };
      if (target.lifecycle !== 'deployed') return { result: ok({ is_success: true }) };
      const next = current.map((s) => (s.id === id ? { ...s, lifecycle: 'undeployed' as const } : s));
      deps.logger.info({ serviceId: id }, 'service undeployed');
      return { result: ok({ is_success: true }), next };
    });
  };

  const remove = (ctx: RouteContext): Promise<HttpResult> => {
    const id = ctx.params.id ?? '';
    return store.transact((current) => {
      const target = current.find((s) => s.id === id);
      if (target === undefined) return { result: notFound(id) };
      const now = statusOf(target, status).status;
      if (now !== 'created' && now !== 'stopped') {
        return { result: fail(409, `service ${id} is ${now}: undeploy it and wait until it is stopped before deleting it`) };
      }
      deps.logger.info({ serviceId: id }, 'service deleted');
      return { result: ok({ is_success: true }), next: current.filter((s) => s.id !== id) };
    });
  };

  const runtimeGet = (ctx: RouteContext): HttpResult => {
    const slug = ctx.params.slug ?? '';
    const service = store.getBySlug(slug);
    return service === undefined ? fail(404, `no service with service_slug "${slug}"`) : ok(runtimeRecord(service, status));
  };

  return [
    { method: 'POST', pattern: BASE, handler: create },
    { method: 'GET', pattern: BASE, handler: (ctx) => list(ctx, serviceRecord) },
    { method: 'GET', pattern: `${BASE}/:id`, handler: getOne },
    { method: 'PUT', pattern: `${BASE}/:id`, handler: update },
    { method: 'DELETE', pattern: `${BASE}/:id`, handler: remove },
    { method: 'POST', pattern: `${BASE}/:id/deploy`, handler: deploy },
    { method: 'POST', pattern: `${BASE}/:id/undeploy`, handler: undeploy },
    { method: 'GET', pattern: RUNTIME, handler: (ctx) => list(ctx, runtimeRecord) },
    { method: 'GET', pattern: `${RUNTIME}/:slug`, handler: runtimeGet },
    // ANY /r/containers/{slug}/* and POST /r/invoke/{slug}: routes-proxy.ts
  ];
}

function notFound(id: string | undefined): HttpResult {
  return fail(404, `no service with id "${id ?? ''}"`);
}

function refuseWhileBusy(service: StoredService, source: StatusSource, what: string): HttpResult | undefined {
  const { status } = statusOf(service, source);
  if (status === 'deploying' || status === 'stopping') {
    return fail(409, `service ${service.id} is ${status} and cannot be ${what} now: retry once it is ${status === 'deploying' ? 'running or failed' : 'stopped'}`);
  }
  return undefined;
}
