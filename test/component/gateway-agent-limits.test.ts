import { fetch } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/gateway/gateway-server.js';
import { createLogger } from '../../src/log.js';
import { CLOSE_TOO_MANY_INVALID, MAX_CONTROL_FRAME_BYTES, MAX_FRAME_BYTES } from '../../src/tunnel/protocol.js';
import { waitFor } from '../helpers/wait-for.js';
import { connectRawAgent, type RawAgent } from '../helpers/raw-agent.js';
import { tempDir } from '../helpers/temp-dirs.js';

const SK = 'sk-agent-limits-test-0000000000000';
const AK = 'ak-agent-limits-test-0000000000000';
const AGENT_ID = 'limits-host';

describe('per-connection limits: an agent connection cannot exhaust the gateway', () => {
  let gateway: Gateway;
  let logLines: Array<{ msg: string; [key: string]: unknown }>;
  const agents: RawAgent[] = [];

  const start = async (over: Partial<GatewayOptions> = {}): Promise<void> => {
    logLines = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void logLines.push(JSON.parse(line) as { msg: string }) } });
    gateway = await startGateway({ port: 0, dataDir: await tempDir('limits'), apiKeys: [SK], agentKeys: [{ key: AK, agentId: AGENT_ID }], logger, ...over });
  };
  const agent = async (): Promise<RawAgent> => {
    const a = await connectRawAgent(gateway.agentUrl, AK);
    agents.push(a);
    a.hello(AGENT_ID);
    await a.next('welcome');
    return a;
  };
  const api = async (method: string, path: string, body?: unknown, maxBody = false) => {
    const res = await fetch(`${gateway.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${SK}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    expect(res.status, `${method} ${path}${maxBody ? ' (large body)' : ''}`).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  };

  beforeEach(async () => start());
  afterEach(async () => {
    for (const a of agents.splice(0)) a.ws.terminate();
    await gateway.close();
  });

  it('answers invalid frames up to the limit (100 a minute), then closes with 4006 and the reason; its log lines are rate-limited', async () => {
    const a = await agent();
    const junk = ['not json', '[1,2]', '{"type":"heartbeat","running_count":"x"}', '{"type":"nope"}', '{"type":"stream.window","stream_id":0,"credit":1}'];
    for (let i = 0; i < 100; i++) a.send(junk[i % junk.length]);
    await waitFor('100 error replies', () => a.frames.filter((f) => f.type === 'error').length === 100);
    expect(a.ws.readyState).toBe(a.ws.OPEN);
    a.send('one more');
    expect(await a.closed).toEqual({ code: CLOSE_TOO_MANY_INVALID, reason: 'too many invalid frames' });
    expect(a.frames.at(-1)).toMatchObject({ type: 'error', code: 'too_many_invalid_frames' });
    expect(String(a.frames.at(-1)?.['message'])).toContain('more than 100 invalid frames within 60 s');
    const frameLines = logLines.filter((l) => l.msg === 'invalid frame from agent');
    expect(frameLines).toHaveLength(10);
    expect(logLines.find((l) => l.msg.startsWith('more warnings of this kind were not logged'))).toMatchObject({ suppressed: 91 });
  });

  it('refuses a control frame above 1 MiB without parsing it; a frame above 16 MiB closes the connection (1009)', async () => {
    const a = await agent();
    a.send(JSON.stringify({ type: 'status.snapshot', services: [], pad: 'x'.repeat(MAX_CONTROL_FRAME_BYTES) }));
    expect(await a.next('error')).toMatchObject({ code: 'frame_too_large' });
    expect(a.ws.readyState).toBe(a.ws.OPEN);
    a.send(Buffer.alloc(MAX_FRAME_BYTES + 1));
    expect((await a.closed).code).toBe(1009);
  });

  it('rate-limits hellos (10 a minute on one connection)', async () => {
    const a = await agent();
    for (let i = 0; i < 10; i++) a.hello(AGENT_ID);
    await waitFor('the rate limit', () => a.frames.find((f) => f.type === 'error'));
    expect(a.frames.filter((f) => f.type === 'welcome')).toHaveLength(10);
    expect(a.frames.find((f) => f.type === 'error')).toMatchObject({ code: 'rate_limited', in_reply_to: 'hello' });
  });

  it('terminates a connection that stops reading once its send buffer stayed above the limit', async () => {
    await gateway.close();
    await start({ maxBodyBytes: 8 * 1024 * 1024, connectionLimits: { sendBufferLimitBytes: 256 * 1024, sendBufferGraceMs: 500 } });
    const a = await agent();
    // The agent stops reading: everything the gateway sends piles up in its buffers.
    const socket = (a.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    const big = 'v'.repeat(3 * 1024 * 1024);
    const terminated = () => logLines.find((l) => l.msg.startsWith('agent does not read'));
    for (let i = 0; i < 8 && terminated() === undefined; i++) {
      const { id } = (await api('POST', '/containers', { service_slug: `big-${i}`, display_name: 'b', docker_image: 'busybox:1', env_config: [{ env_name: 'BIG', env_value: big }] }, true)) as { id: string };
      await api('POST', `/containers/${id}/deploy`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await waitFor('the termination logged', terminated, 10_000)).toMatchObject({ limit: 256 * 1024, graceMs: 500 });
    socket.resume();
    expect((await a.closed).code).toBe(1006);
    const agentsAfter = await api('GET', '/agents');
    expect(agentsAfter['agent_list']).toEqual([]);
  });
});
