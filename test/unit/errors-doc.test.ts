import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CredentialErrorCodes, ErrorCodes, ProtocolErrorCodes, StreamResetCodes } from '../../src/errors.js';
import { repoPath } from '../helpers/repo-root.js';

/**
 * docs/errors.md and src/errors.ts list the same codes, section by section (as fastify keeps its
 * FST_ERR docs in step): a code without a row, or a row without a code, fails here.
 */
const doc = readFileSync(repoPath('docs/errors.md'), 'utf8');

/** The backticked first cells of the table rows under the `## <heading>` section. */
function documentedCodes(heading: string): string[] {
  const start = doc.indexOf(`\n## ${heading}`);
  if (start < 0) throw new Error(`docs/errors.md has no section "## ${heading}"`);
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] ?? '');
}

describe('docs/errors.md and src/errors.ts', () => {
  it.each([
    ['Agent errors', ErrorCodes],
    ['Tunnel `error` frame codes', ProtocolErrorCodes],
    ['Stream reset codes', StreamResetCodes],
    ['Credential answer codes', CredentialErrorCodes],
  ] as const)('section "%s" lists exactly the codes of its table', (heading, table) => {
    const documented = documentedCodes(heading);
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual(Object.values(table).sort());
  });

  it('every code has a meaning and an action', () => {
    for (const row of doc.matchAll(/^\| `[^`]+` \|(.*)\|(.*)\|$/gm)) {
      expect(row[1]?.trim().length).toBeGreaterThan(10);
      expect(row[2]?.trim().length).toBeGreaterThan(3);
    }
  });
});
