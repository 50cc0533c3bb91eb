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
  const segments = path.split('/').slice(1);
  const allow: string[] = [];
  for (const route of routes) {
    const params = matchPattern(route.pattern, segments);
    if (params === undefined) continue;
    if (route.method === '*' || route.method === method) return { kind: 'found', route, params };
    allow.push(route.method);
  }
  return allow.length > 0 ? { kind: 'method-not-allowed', allow } : { kind: 'not-found' };
}

/** Patterns split into segments once: every request is matched against every route until one fits. */
const splitPatterns = new Map<string, string[]>();

function patternParts(pattern: string): string[] {
  let parts = splitPatterns.get(pattern);
  if (parts === undefined) {
    parts = pattern.split('/').slice(1);
    splitPatterns.set(pattern, parts);
  }
  return parts;
}

function matchPattern(pattern: string, segments: string[]): Record<string, string> | undefined {
  const parts = patternParts(pattern);
  // Most routes fail on their length or first literal segment; no params object for those.
  if (parts.length > segments.length || (parts.length < segments.length && parts.at(-1) !== '*')) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? '';
    if (part === '*') {
      if (segments.length <= i) return undefined;
      params['*'] = segments.slice(i).join('/');
      return params;
    }
    const segment = segments[i];
    if (segment === undefined) return undefined;
    if (part.startsWith(':')) {
      if (segment === '') return undefined;
      const decoded = safeDecode(segment);
      if (decoded === undefined) return undefined;
      params[part.slice(1)] = decoded;
    } else if (part !== segment) {
      return undefined;
    }
  }
  return segments.length === parts.length ? params : undefined;
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
