import { describe, expect, it } from 'vitest';
import { matchRoute, type Route } from '../../../src/gateway/router.js';

const handler = () => ({ status: 200, body: {} }) as never;
const routes: Route[] = [
  { method: 'GET', pattern: '/api/v1/containers', handler },
  { method: 'GET', pattern: '/api/v1/containers/:id', handler },
  { method: 'POST', pattern: '/api/v1/containers/:id/deploy', handler },
  { method: '*', pattern: '/api/v1/r/containers/:slug/*', handler },
  { method: '*', pattern: '/api/v1/r/containers/:slug', handler },
];

describe('matchRoute (patterns split once, length checked first)', () => {
  it.each([
    ['GET', '/api/v1/containers', 'found', '/api/v1/containers', {}],
    ['GET', '/api/v1/containers/a%20b', 'found', '/api/v1/containers/:id', { id: 'a b' }],
    ['POST', '/api/v1/containers/x/deploy', 'found', '/api/v1/containers/:id/deploy', { id: 'x' }],
    ['GET', '/api/v1/r/containers/llm/v1/models', 'found', '/api/v1/r/containers/:slug/*', { slug: 'llm', '*': 'v1/models' }],
    ['PUT', '/api/v1/r/containers/llm', 'found', '/api/v1/r/containers/:slug', { slug: 'llm' }],
    ['GET', '/api/v1/r/containers/llm/', 'found', '/api/v1/r/containers/:slug/*', { slug: 'llm', '*': '' }],
  ])('%s %s → %s %s', (method, path, kind, pattern, params) => {
    const m = matchRoute(routes, method, path);
    expect(m.kind).toBe(kind);
    if (m.kind === 'found') {
      expect(m.route.pattern).toBe(pattern);
      expect(m.params).toEqual(params);
    }
  });

  it('answers method-not-allowed with the allowed methods, and not-found for other lengths and literals', () => {
    expect(matchRoute(routes, 'DELETE', '/api/v1/containers/x/deploy')).toEqual({ kind: 'method-not-allowed', allow: ['POST'] });
    expect(matchRoute(routes, 'GET', '/api/v1/containers/x/deploy/more')).toEqual({ kind: 'not-found' });
    expect(matchRoute(routes, 'GET', '/api/v2/containers')).toEqual({ kind: 'not-found' });
    expect(matchRoute(routes, 'GET', '/api/v1/containers/%E0%A4%A')).toEqual({ kind: 'not-found' });
    expect(matchRoute(routes, 'GET', '/api/v1/containers/')).toEqual({ kind: 'not-found' });
  });

  it('a table whose patterns change is split again', () => {
    const table: Route[] = [{ method: 'GET', pattern: '/a/:x', handler }];
    expect(matchRoute(table, 'GET', '/a/1')).toMatchObject({ kind: 'found', params: { x: '1' } });
    table[0] = { method: 'GET', pattern: '/b/:y/*', handler };
    expect(matchRoute(table, 'GET', '/a/1')).toEqual({ kind: 'not-found' });
    expect(matchRoute(table, 'GET', '/b/2/c/d')).toMatchObject({ kind: 'found', params: { y: '2', '*': 'c/d' } });
    table.push({ method: 'GET', pattern: '/a/:x', handler });
    expect(matchRoute(table, 'GET', '/a/3')).toMatchObject({ kind: 'found', params: { x: '3' } });
  });
});
