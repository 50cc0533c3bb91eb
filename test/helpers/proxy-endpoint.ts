import { buildProxyEndpoint, type ProxyEndpointOptions } from '../../src/agent-wiring.js';
import type { AgentCore } from '../../src/agent-core.js';
import { silentLogger } from '../../src/log.js';
import type { AgentStreams } from '../../src/proxy/agent-streams.js';

export type ProxyOptions = Partial<ProxyEndpointOptions['limits']> & Omit<Partial<ProxyEndpointOptions>, 'core' | 'limits'>;

/** The agent's proxy endpoint for a TunnelClient in tests, with test limits and any overrides. */
export function proxyEndpointFor(core: Pick<AgentCore, 'readyEndpoints' | 'desiredService' | 'replicaLogs'>, over: ProxyOptions = {}): AgentStreams {
  const { maxBodyBytes, headersTimeoutMs, idleTimeoutMs, allowPrivateUpstreams, ...rest } = over;
  return buildProxyEndpoint({
    core,
    logger: silentLogger(),
    drainTimeoutMs: 500,
    ...rest,
    limits: {
      maxBodyBytes: maxBodyBytes ?? 1 << 30,
      headersTimeoutMs: headersTimeoutMs ?? 10_000,
      idleTimeoutMs: idleTimeoutMs ?? 10_000,
      allowPrivateUpstreams: allowPrivateUpstreams ?? true,
    },
  });
}
