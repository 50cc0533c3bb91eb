import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { repoPath } from './repo-root.js';
import { waitFor } from './wait-for.js';

const BIN = repoPath('bin/cyberun-agent.js');
const DIST = repoPath('dist/cli/main.js');

/** `cyberun-agent gateway` as operators run it: its own process, measured from outside. */
export interface GatewayProcess {
  url: string;
  agentUrl: string;
  port: number;
  child: ChildProcess;
  /** Resident set size now, and its peak so far (VmHWM), in bytes, from /proc. */
  rssBytes(): number;
  peakRssBytes(): number;
  /** Bytes the gateway logged on stdout so far. */
  logBytes(): number;
  /** Whether the process is still running. */
  alive(): boolean;
  /** What it printed on stderr (the CLI's human lines). */
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * Starts `node bin/cyberun-agent.js gateway --port 0` on `dataDir`, with the given keys written to
 * its key files (mode 0600, agent keys bound to their ids). Needs `npm run build` (npm test runs it).
 */
export async function startGatewayProcess(dataDir: string, keys: { api: string[]; agent: Array<{ key: string; agentId: string }> }): Promise<GatewayProcess> {
  if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run "npm run build" first (npm test does)`);
  await writeFile(path.join(dataDir, 'api-keys'), `${keys.api.join('\n')}\n`, { mode: 0o600 });
  await writeFile(path.join(dataDir, 'agent-keys'), keys.agent.map((k) => `${k.key} ${k.agentId}\n`).join(''), { mode: 0o600 });
  const child = spawn(process.execPath, [BIN, 'gateway', '--port', '0', '--data-dir', dataDir], {
    cwd: dataDir,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let logBytes = 0;
  let exited = false;
  child.stdout?.on('data', (d: Buffer) => {
    logBytes += d.byteLength;
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.once('exit', () => {
    exited = true;
  });
  const base = await waitFor('the gateway process listening', () => {
    if (exited) throw new Error(`the gateway exited:\n${stderr}`);
    return /REST API at (http:\/\/\S+)\/api\/v1/.exec(stderr)?.[1];
  }, 30_000, 50);
  const status = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${child.pid ?? 0}/status`, 'utf8'));
    return Number(match?.[1] ?? '0') * 1024;
  };
  const port = Number(new URL(base).port);
  return {
    url: base,
    agentUrl: `ws://127.0.0.1:${port}/api/v1/agent/connect`,
    port,
    child,
    rssBytes: () => status('VmRSS'),
    peakRssBytes: () => status('VmHWM'),
    logBytes: () => logBytes,
    alive: () => !exited && child.exitCode === null,
    stderr: () => stderr,
    async stop() {
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(force);
    },
  };
}
