import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';

import { silentLogger } from '../../src/log.js';
import { TunnelClient } from '../../src/tunnel/tunnel-client.js';
import type { TunnelState } from '../../src/tunnel/tunnel-state.js';
import { FakeAgentCore } from '../helpers/fake-agent-core.js';
import { waitFor } from '../helpers/wait-for.js';
import { proxyEndpointFor } from '../helpers/proxy-endpoint.js';

const fixture = (name: string) => readFile(new URL(`../fixtures/tls/${name}`, import.meta.url), 'utf8');

describe('tunnel over TLS', () => {
  let server: Server;
  let wss: WebSocketServer;
  let url: string;
  let ca: string;
  let client: TunnelClient | undefined;
  const hellos: string[] = [];

  beforeEach(async () => {
    ca = await fixture('gateway-cert.pem');
    server = createServer({ cert: ca, key: await fixture('gateway-key.pem') });
    wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => ws.on('message', (d) => hellos.push(String(d))));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `wss://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/agent/connect`;
    hellos.length = 0;
  });
  afterEach(async () => {
    await client?.close();
    for (const ws of wss.clients) ws.terminate();
    await new Promise((r) => wss.close(r));
    await new Promise((r) => server.close(r));
  });

  const connect = (caPem: string | undefined) => {
    const states: TunnelState[] = [];
    const core = new FakeAgentCore();
    client = new TunnelClient({
      url,
      agentKey: 'ak-x',
      ...(caPem === undefined ? {} : { caPem }),
      agentId: 'tls-host',
      agentVersion: '1',
      labels: () => [],
      inventory: () => undefined,
      core,
      streams: proxyEndpointFor(core),
      logger: silentLogger(),
      reconnect: { baseMs: 50, capMs: 200 },
    });
    client.onState((s) => states.push(s));
    client.start();
    return states;
  };

  it('connects when the gateway CA is given', async () => {
    connect(ca);
    const hello = await waitFor('hello over TLS', () => hellos[0]);
    expect(JSON.parse(hello)).toMatchObject({ type: 'hello', agent_id: 'tls-host' });
  });

  it('refuses an unknown certificate, naming TLS in the reason', async () => {
    const states = connect(undefined);
    const failed = await waitFor('TLS failure', () => states.find((s) => s.kind === 'disconnected'));
    expect(failed.kind === 'disconnected' && failed.reason).toMatch(/TLS verification of 127\.0\.0\.1:\d+ failed \((SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT)\)/);
    expect(hellos).toEqual([]);
  });
});
