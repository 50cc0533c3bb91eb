import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startGateway } from '../src/gateway/gateway-server.js';
import { createLogger } from '../src/log.js';

/**
 * The gateway of `npm run bench -- hostile`, in its own process (started with --expose-gc): it
 * answers the parent's 'measure' messages with its memory after two full collections, so the
 * bench sees live memory, not garbage waiting for a collection.
 */
const key = process.env['HOSTILE_AGENT_KEY'] ?? '';
const gateway = await startGateway({
  port: 0,
  dataDir: await mkdtemp(path.join(os.tmpdir(), 'cyberun-bench-hostile-')),
  apiKeys: ['sk-bench-hostile-000000000000000000'],
  agentKeys: [{ key, agentId: 'evil-agent' }],
  logger: createLogger({ level: 'warn', destination: { write: () => undefined } }),
});
const gc = (globalThis as { gc?: () => void }).gc;
process.on('message', (message) => {
  if (message === 'measure') {
    gc?.();
    gc?.();
    const m = process.memoryUsage();
    process.send?.({ heapUsed: m.heapUsed, external: m.external, rss: m.rss });
  } else if (message === 'stop') {
    void gateway.close().then(() => process.exit(0));
  }
});
process.send?.({ agentUrl: gateway.agentUrl });
