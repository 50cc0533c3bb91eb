import { execFile } from 'node:child_process';
import { get, type IncomingMessage } from 'node:http';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../src/gateway/gateway-server.js';
import { silentLogger } from '../../src/log.js';
import { Labels } from '../../src/domain/ownership-labels.js';
import { startTestAgent, tempDir, tearDown, testConfig, type TestAgent } from '../helpers/agent-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { newTestRunId, requireDocker } from '../helpers/docker.js';
import { listByLabel } from '../helpers/engine.js';
import { ensureTestImages } from '../helpers/test-images.js';
import { gatewayClient } from '../helpers/gateway-client.js';

const exec = promisify(execFile);
const docker = await requireDocker('replica logs e2e tests');
const SK = 'sk-logs-e2e-kkkkkkkkkkkkkkkkkkkkkk';
const AK = 'ak-logs-e2e-kkkkkkkkkkkkkkkkkkkkkk';

/**
 * The RSS growth a stalled follower may cause in this process, which holds the gateway, the agent
 * and the test runner: what the agent holds is the tunnel's windows and socket buffers (about 3 MB
 * of log lines get through before the writes stop), the rest is heap the runtime grows over 30 s
 * of work without a full GC. Measured 59–69 MiB; the log is 100 MB.
 */
const RSS_BOUND = 96 * 1024 * 1024;

interface LogLine {
  replica_index: number;
  agent_id: string;
  stream: 'stdout' | 'stderr';
  time: string;
  line: string;
}

/** An SSE reader of the follow endpoint: events parsed as they come; `pause()` stops reading the socket. */
function follow(url: string): Promise<{ lines: LogLine[]; res: IncomingMessage; close(): void }> {
  return new Promise((resolve, reject) => {
    const lines: LogLine[] = [];
    const req = get(url, { headers: { authorization: `Bearer ${SK}` } }, (res) => {
      res.setEncoding('utf8');
      let pending = '';
      res.on('data', (text: string) => {
        pending += text;
        let end = pending.indexOf('\n\n');
        while (end >= 0) {
          const event = pending.slice(0, end);
          pending = pending.slice(end + 2);
          if (event.startsWith('data: ')) lines.push(JSON.parse(event.slice(6)) as LogLine);
          end = pending.indexOf('\n\n');
        }
      });
      res.on('error', () => undefined);
      resolve({ lines, res, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

describe.skipIf(!docker)('replica logs: GET /containers/{id}/logs through the tunnel, and cyberun-agent logs', () => {
  const runId = newTestRunId('logs');
  const SLUG = `logs-${runId.slice(-6)}`;
  let gateway: Gateway;
  let t: TestAgent;
  let serviceId: string;
  const api = (path: string) => gatewayClient(gateway.url, SK).call('GET', path);
  const logsUrl = (query: string) => `${gateway.url}/api/v1/containers/${serviceId}/logs${query}`;

  beforeAll(async () => {
    await ensureTestImages();
    gateway = await startGateway({ port: 0, dataDir: await tempDir('logs-gw'), apiKeys: [SK], agentKeys: [AK], logger: silentLogger(), heartbeatIntervalMs: 500 });
    t = await startTestAgent(testConfig(runId, await tempDir('logs-agent'), { gatewayUrl: gateway.agentUrl, agentKey: AK }));
    serviceId = await gatewayClient(gateway.url, SK).deployRunning({ service_slug: SLUG, display_name: 'logs', docker_image: 'cyberun-test/busybox-http:1', replica_count: 2 });
  }, 120_000);

  afterAll(() => tearDown(t, gateway));

  it('tail returns both replicas\' lines, oldest first, with agent, stream and time', async () => {
    const answer = await api(`/containers/${serviceId}/logs?tail=10`);
    expect(answer.status).toBe(200);
    const lines = answer.body['log_lines'] as LogLine[];
    expect(lines.filter((l) => l.line === 'serving on :8080').map((l) => l.replica_index).sort()).toEqual([0, 1]);
    expect(lines.every((l) => l.agent_id === t.config.agentId && (l.stream === 'stdout' || l.stream === 'stderr') && /^\d{4}-\d\d-\d\dT/.test(l.time))).toBe(true);
    expect([...lines].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0))).toEqual(lines);
    const one = await api(`/containers/${serviceId}/logs?replica=1`);
    expect((one.body['log_lines'] as LogLine[]).map((l) => l.replica_index)).toEqual(expect.arrayContaining([1]));
    expect((one.body['log_lines'] as LogLine[]).some((l) => l.replica_index === 0)).toBe(false);
  });

  it('follow delivers a line written after the request', async () => {
    const reader = await follow(logsUrl('?follow=true&tail=0'));
    try {
      expect(reader.res.statusCode).toBe(200);
      expect(reader.res.headers['content-type']).toContain('text/event-stream');
      const marker = `marker-${Date.now()}`;
      const [container] = await listByLabel(`${Labels.SERVICE_ID}=${serviceId}`);
      // PID 1 (docker-init)'s stderr is the container's: the replica writes a line after the request began.
      await exec('docker', ['exec', container ?? '', 'sh', '-c', `echo ${marker} > /proc/1/fd/2`]);
      const seen = await waitFor('the request\'s log line through the follower', () => reader.lines.find((l) => l.line.includes(marker)), 10_000);
      expect(seen.stream).toBe('stderr');
    } finally {
      reader.close();
    }
  });

  it('a follower that stops reading while a replica writes 100 MB holds the agent back instead of growing it', async () => {
    const reader = await follow(logsUrl('?follow=true&tail=0'));
    reader.res.pause();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 200);
    try {
      const [container] = await listByLabel(`${Labels.SERVICE_ID}=${serviceId}`);
      const started = Date.now();
      // PID 1 (docker-init)'s stdout is the container's log: 100 MB of lines through it.
      await exec('docker', ['exec', container ?? '', 'sh', '-c', 'yes "a log line of the replica, written while nobody reads" | head -c 100000000 > /proc/1/fd/1'], { timeout: 120_000 });
      // The rest of the 30 s the follower does not read: nothing to wait for but time.
      await new Promise((r) => setTimeout(r, Math.max(0, started + 30_000 - Date.now())));
      process.stderr.write(`replica logs: RSS growth with a stalled follower over 100 MB of log: ${((peak - before) / 2 ** 20).toFixed(1)} MiB (bound ${RSS_BOUND / 2 ** 20} MiB)\n`);
      expect(peak - before).toBeLessThan(RSS_BOUND);
      // Still serving: a tail answers, and the stalled follower's stream is still open.
      expect((await api(`/containers/${serviceId}/logs?tail=1`)).status).toBe(200);
      expect(reader.res.destroyed).toBe(false);
      // It was held back, not lost: reading again, the follower gets the replica's lines.
      reader.res.resume();
      await waitFor('the held-back lines reaching the follower', () => reader.lines.some((l) => l.line.startsWith('a log line of the replica')), 20_000);
    } finally {
      clearInterval(sampler);
      reader.close();
    }
  }, 120_000);

  it('answers 404 for an unknown service and 400 naming each bad parameter', async () => {
    const unknown = await api('/containers/00000000-0000-0000-0000-000000000000/logs');
    expect(unknown.status).toBe(404);
    const bad = await api(`/containers/${serviceId}/logs?tail=-1&since=yesterday&replica=x&follow=maybe&color=red`);
    expect(bad.status).toBe(400);
    const message = String(bad.body['error_message']);
    for (const name of ['tail "-1"', 'since "yesterday"', 'replica "x"', 'follow "maybe"', 'unknown parameter "color"']) expect(message).toContain(name);
  });
});
