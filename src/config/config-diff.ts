import { maskedConfig } from './load-config.js';
import type { AgentConfig } from './types.js';

/**
 * Keys a SIGHUP reload applies to the running agent without restarting anything. Each is read by
 * its users at the moment of use (labels at placement, restart policy at each crash, pull timeouts
 * at each pull, the start budget at each plan, allowed roots at each mount check, the log level on
 * every line). `agent_labels` reach the gateway at once in a new `hello` on the open tunnel
 * (TunnelClient.refreshHello); placement on this host uses them at once too.
 */
export const LIVE_CONFIG_KEYS: readonly string[] = [
  'agent_labels',
  'log_level',
  'volumes.allowed_roots',
  'health.start_budget',
  'restart.backoff_base',
  'restart.backoff_cap',
  'restart.stable_after',
  'restart.crash_loop_limit',
  'restart.failed_retry',
  'restart.stop_timeout',
  'pull.stall_timeout',
  'pull.total_timeout',
  'shutdown.drain_timeout',
  'image_gc.enabled',
  'image_gc.high_percent',
  'image_gc.low_percent',
  'image_gc.min_age',
];

export interface ConfigChange {
  /** Changed keys (file key paths) that apply live. */
  live: string[];
  /** Changed keys that take effect only after `cyberun-agent` restarts (containers keep running then too). */
  needsRestart: string[];
}

/** Which keys differ between two configs, split by whether they can apply live. Pure. */
export function diffConfig(current: AgentConfig, next: AgentConfig): ConfigChange {
  const a = leaves(maskedConfig(current));
  const b = leaves(maskedConfig(next));
  const changed = [...new Set([...a.keys(), ...b.keys()])].filter((k) => k !== 'agent_key' && a.get(k) !== b.get(k));
  // maskedConfig shows the key by length only: compare the real values, and never print them.
  if (current.agentKey !== next.agentKey) changed.push('agent_key');
  return {
    live: changed.filter((k) => LIVE_CONFIG_KEYS.includes(k)),
    needsRestart: changed.filter((k) => !LIVE_CONFIG_KEYS.includes(k)),
  };
}

function leaves(obj: Record<string, unknown>, prefix = '', out = new Map<string, string>()): Map<string, string> {
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) leaves(v as Record<string, unknown>, `${prefix}${k}.`, out);
    else out.set(`${prefix}${k}`, JSON.stringify(v));
  }
  return out;
}
