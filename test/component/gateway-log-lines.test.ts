import { describe, expect, it } from 'vitest';
import { startGateway } from '../../src/gateway/gateway-server.js';
import { createLogger } from '../../src/log.js';
import { connectRawAgent } from '../helpers/raw-agent.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { waitFor } from '../helpers/wait-for.js';

const AK = 'ak-log-lines-test-00000000000000000';
const AGENT_ID = 'log-lines-host';

/** The keys of a JSON object's top level in the order written, duplicates kept (JSON.parse keeps only the last). */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      const end = findStringEnd(line, i);
      if (depth === 1 && line[end + 1] === ':') keys.push(JSON.parse(line.slice(i, end + 1)) as string);
      i = end;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return keys;
}

function findStringEnd(line: string, start: number): number {
  for (let i = start + 1; i < line.length; i++) {
    if (line[i] === '\\') i++;
    else if (line[i] === '"') return i;
  }
  return line.length;
}

describe("the gateway's log lines", () => {
  it('name each field once: an agent that connects and leaves is logged with one agentId and one component per line', async () => {
    const lines: string[] = [];
    // As `cyberun-agent dev` hands it over: a child logger of the process's own.
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } }).child({ role: 'gateway' });
    const gateway = await startGateway({ port: 0, dataDir: await tempDir('log-lines'), apiKeys: [], agentKeys: [{ key: AK, agentId: AGENT_ID }], logger });
    try {
      const agent = await connectRawAgent(gateway.agentUrl, AK);
      agent.hello(AGENT_ID);
      await agent.next('welcome');
      agent.close();
      await agent.closed;
      const left = await waitFor('the disconnect line', () => lines.find((l) => l.includes('"agent disconnected"')));
      expect((JSON.parse(left) as { agentId?: string }).agentId).toBe(AGENT_ID);
      for (const line of lines) {
        const keys = topLevelKeys(line);
        expect(keys.filter((k, i) => keys.indexOf(k) !== i), line).toEqual([]);
      }
    } finally {
      await gateway.close();
    }
  });
});
