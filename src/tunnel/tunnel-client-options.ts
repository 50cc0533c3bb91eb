import type { AgentCore } from '../agent-core.js';
import type { Logger } from '../log.js';
import type { HostSummary } from './agent-frames.js';
import type { StreamEndpoint } from './stream-endpoint.js';

/** What the agent's tunnel client (tunnel-client.ts) is built with. */
export interface TunnelClientOptions {
  /** ws(s)://…/api/v1/agent/connect */
  url: string;
  /** ak-… */
  agentKey: string;
  /** Extra CA (PEM) trusted for the gateway's TLS certificate; verification stays on. */
  caPem?: string;
  agentId: string;
  agentVersion: string;
  labels: () => string[];
  inventory: () => HostSummary | undefined;
  core: AgentCore;
  logger: Logger;
  /** Full-jitter exponential reconnect; default 1 s → 60 s; reset after a welcome. */
  reconnect?: { baseMs: number; capMs: number };
  random?: () => number;
  /** WebSocket ping interval; a missed pong terminates the connection. Default 20 s. */
  pingIntervalMs?: number;
  /** Period of the full status snapshot. Default 30 s. */
  snapshotIntervalMs?: number;
  /** Opening handshake timeout. Default 15 s. */
  handshakeTimeoutMs?: number;
  /**
   * What serves proxied streams (the agent's proxy). The tunnel attaches it to each connection and
   * detaches it when the connection goes; `close()` drains it, then closes it.
   */
  streams: StreamEndpoint;
}
