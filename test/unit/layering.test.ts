import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoPath } from '../helpers/repo-root.js';

/**
 * One direction for every dependency (README "Layout"): each part of src/ may import only the parts
 * listed here (plus node: built-ins and npm packages). A part is a folder of src/, or a file at its
 * top. `domain/` owns its vocabulary and imports no adapter; the tunnel defines the stream endpoint
 * the proxy implements; only agent.ts and cli/ wire adapters together.
 */
const BASE = ['errors', 'log', 'version', 'util'];
const ALLOWED: Record<string, readonly string[]> = {
  errors: [],
  log: [],
  version: [],
  util: ['errors'],
  'service-definition': ['errors', 'util'],
  domain: ['service-definition', 'errors'],
  config: ['domain', ...BASE],
  host: ['domain', ...BASE],
  runtime: ['domain', ...BASE],
  health: ['domain', ...BASE],
  'agent-core': ['domain', 'service-definition'],
  'drain-registry': [...BASE],
  tunnel: ['agent-core', 'domain', 'service-definition', ...BASE],
  proxy: ['tunnel', 'agent-core', 'domain', 'service-definition', ...BASE],
  reconcile: ['runtime', 'health', 'agent-core', 'domain', 'service-definition', ...BASE],
  admin: ['config', 'tunnel', 'domain', ...BASE],
  gateway: ['tunnel', 'domain', 'service-definition', ...BASE],
  'agent-wiring': ['reconcile', 'proxy', 'tunnel', 'runtime', 'config', 'agent-core', 'domain', 'service-definition', ...BASE],
  agent: ['agent-wiring', 'admin', 'reconcile', 'proxy', 'tunnel', 'runtime', 'health', 'host', 'config', 'agent-core', 'drain-registry', 'domain', 'service-definition', ...BASE],
  cli: ['agent', 'agent-wiring', 'gateway', 'admin', 'reconcile', 'proxy', 'tunnel', 'runtime', 'health', 'host', 'config', 'agent-core', 'drain-registry', 'domain', 'service-definition', ...BASE],
};

interface Edge {
  file: string;
  from: string;
  to: string;
}

function partOf(relative: string): string {
  const [first, ...rest] = relative.split('/');
  return rest.length > 0 ? (first ?? '') : (first ?? '').replace(/\.ts$/, '');
}

/** Every relative import between two different parts of `srcDir`. */
function importEdges(srcDir: string): Edge[] {
  const edges: Edge[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts')) {
        const from = partOf(path.relative(srcDir, full));
        const text = readFileSync(full, 'utf8');
        for (const match of text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)) {
          const target = path.resolve(path.dirname(full), match[1] ?? '');
          const to = partOf(path.relative(srcDir, target).replace(/\.js$/, '.ts'));
          if (to !== from) edges.push({ file: path.relative(srcDir, full), from, to });
        }
      }
    }
  };
  walk(srcDir);
  return edges;
}

function violations(edges: readonly Edge[], allowed: Record<string, readonly string[]>): string[] {
  return edges
    .filter((e) => !(allowed[e.from] ?? []).includes(e.to))
    .map((e) => `${e.file} imports ${e.to}/ (${e.from}/ may import: ${(allowed[e.from] ?? []).join(', ') || 'nothing'})`);
}

describe('layering of src/', () => {
  const edges = importEdges(repoPath('src'));

  it('finds the imports it judges (the scan itself works)', () => {
    expect(edges.some((e) => e.from === 'proxy' && e.to === 'tunnel')).toBe(true);
    expect(edges.some((e) => e.from === 'agent' && e.to === 'reconcile')).toBe(true);
  });

  it('every part of src/ is known to the rules', () => {
    const parts = new Set(edges.flatMap((e) => [e.from, e.to]));
    expect([...parts].filter((p) => !(p in ALLOWED))).toEqual([]);
  });

  it('every import points down the layers', () => {
    expect(violations(edges, ALLOWED)).toEqual([]);
  });

  it.each([
    ['domain importing an adapter', { file: 'domain/x.ts', from: 'domain', to: 'runtime' }],
    ['the tunnel importing the proxy', { file: 'tunnel/x.ts', from: 'tunnel', to: 'proxy' }],
    ['config importing admin', { file: 'config/x.ts', from: 'config', to: 'admin' }],
  ])('would report %s', (_what, edge) => {
    expect(violations([edge], ALLOWED)).toHaveLength(1);
  });
});
