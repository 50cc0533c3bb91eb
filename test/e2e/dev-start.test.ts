import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { Labels } from '../../src/domain/ownership-labels.js';
import { newTestRunId, removeTestNetwork, requireDocker } from '../helpers/docker.js';
import { sweepByLabel } from '../helpers/engine.js';
import { repoPath } from '../helpers/repo-root.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { ensureTestImages } from '../helpers/test-images.js';

const docker = await requireDocker('npm start (cyberun-agent dev) e2e tests');

/** Runs `cyberun-agent dev` (what `npm start` runs after building) until it prints its banner; returns the banner. */
function devStart(dataDir: string, agentId: string, network: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, CYBERUN_GATEWAY_API_KEYS: undefined, CYBERUN_STATE_DIR: undefined, CYBERUN_LOG_LEVEL: 'error' };
    const child = spawn(process.execPath, [repoPath('bin', 'cyberun-agent.js'), 'dev', '--port', '0', '--data-dir', dataDir, '--agent-id', agentId, '--set', `docker.network=${network}`], {
      env: env as NodeJS.ProcessEnv,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cyberun-agent dev printed no banner within 60 s:\n${stderr}`));
    }, 60_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      stderr += text;
      if (/curl -s \S+\/r\/containers\/hello/.test(stderr)) child.kill('SIGTERM');
    });
    child.once('exit', () => {
      clearTimeout(timer);
      if (stderr.includes('API key:')) resolve(stderr);
      else reject(new Error(`cyberun-agent dev exited without a banner:\n${stderr}`));
    });
  });
}

describe.skipIf(!docker)('npm start: cyberun-agent dev on the same data dir twice', () => {
  const runId = newTestRunId('devstart');
  const agentId = `test-${runId}`.slice(0, 60);
  const network = `cyberun-${runId}`.slice(0, 60);
  afterAll(async () => {
    await sweepByLabel(`${Labels.AGENT_ID}=${agentId}`);
    await removeTestNetwork(network);
  });

  it('prints the same API key both times, and a deploy of an image this engine has', async () => {
    await ensureTestImages();
    const dataDir = await tempDir('devstart');
    const first = await devStart(dataDir, agentId, network);
    const second = await devStart(dataDir, agentId, network);
    const keyOf = (banner: string) => /API key: {2}(sk-\S+)/.exec(banner)?.[1];
    expect(keyOf(first)).toMatch(/^sk-/);
    expect(keyOf(second)).toBe(keyOf(first));
    expect(first).toContain('(generated now, stored in');
    expect(second).toContain(`(from ${dataDir}/gateway/api-keys)`);
    // The hint names an image present here (the test images are), with its port.
    expect(second).toMatch(/"docker_image":"(nginx:[^"]+|cyberun-test\/busybox-http:1|cyberun-test\/node-http:1|[^"<]+)","exposed_port":/);
    expect(second).not.toContain('<a local image>');
  }, 150_000);
});
