import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BodyResult, HttpResult } from './http-io.js';

export interface RouteContext {
  req: IncomingMessage;
  /** For handlers that stream their answer themselves and return STREAMED (http-io.ts). */
  res: ServerResponse;
  /** `:name` segments of the pattern, URI-decoded; `*` holds the rest of the path. */
  params: Record<string, string>;
  /** The request URL, parsed once by the server. */
  url: URL;
  query: URLSearchParams;
  /** Reads the JSON body (size-limited); call at most once. */
  readBody(): Promise<BodyResult>;
}

export interface Route {
  /** An HTTP method, or '*' for any. */
  method: string;
  /** Segments: literal, `:param`, or a final `*` (one or more remaining segments). */
  pattern: string;
  handler: (ctx: RouteContext) => HttpResult | Promise<HttpResult>;
}

export type Match =
  | { kind: 'found'; route: Route; params: Record<string, string> }
  | { kind: 'method-not-allowed'; allow: string[] }
  | { kind: 'not-found' };

/** First route whose pattern and method match `path`. Pure. */
export function matchRoute(routes: readonly Route[], method: string, path: string): Match {
  // segments[0] is the empty string before the leading '/'; pattern parts line up from index 1.
  const segments = path.split('/');
  const allow: string[] = [];
  const compiled = compiledTable(routes);
  for (let r = 0; r < routes.length; r++) {
    const route = routes[r] as Route;
    let c = compiled[r];
    if (c === undefined || c.pattern !== route.pattern) c = compiled[r] = compile(route.pattern);
    const params = matchPattern(c, segments);
    if (params === undefined) continue;
    if (route.method === '*' || route.method === method) return { kind: 'found', route, params };
    allow.push(route.method);
  }
  return allow.length > 0 ? { kind: 'method-not-allowed', allow } : { kind: 'not-found' };
}

/** A pattern split once: its segments (from index 1, as a path's split) and whether it ends in `*`. */
interface Compiled {
  pattern: string;
  parts: string[];
  star: boolean;
}

/**
 * Each route table's patterns, split on first use, by position: matchRoute splits a pattern again
 * only when the route at that position has another pattern now (one table lookup per request).
 */
const compiledTables = new WeakMap<readonly Route[], Array<Compiled | undefined>>();

function compiledTable(routes: readonly Route[]): Array<Compiled | undefined> {
  let table = compiledTables.get(routes);
  if (table === undefined) {
    table = [];
    compiledTables.set(routes, table);
  }
  return table;
}

function compile(pattern: string): Compiled {
  const parts = pattern.split('/');
  return { pattern, parts, star: parts.at(-1) === '*' };
}

function matchPattern({ parts, star }: Compiled, segments: string[]): Record<string, string> | undefined {
  // Most routes fail on their length or a literal segment: no params object for those.
  if (star ? segments.length < parts.length : segments.length !== parts.length) return undefined;
  const last = star ? parts.length - 1 : parts.length;
  for (let i = 1; i < last; i++) {
    const part = parts[i] as string;
    if (part.charCodeAt(0) !== 58 /* ':' */ && part !== segments[i]) return undefined;
  }
  const params: Record<string, string> = {};
  for (let i = 1; i < last; i++) {
    const part = parts[i] as string;
    if (part.charCodeAt(0) !== 58) continue;
    const segment = segments[i] as string;
    if (segment === '') return undefined;
    const decoded = segment.includes('%') ? safeDecode(segment) : segment;
    if (decoded === undefined) return undefined;
    params[part.slice(1)] = decoded;
  }
  if (star) params['*'] = segments.slice(last).join('/');
  return params;
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
