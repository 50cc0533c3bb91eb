/**
 * Tunnel state, emitted to `onState` listeners on every change:
 *
 *   connecting ──welcome──▶ connected ──lost──▶ disconnected{reason, retryInMs} ──timer──▶ connecting
 *        └──────refused / failed──────────────────────▲
 *   any ──close()──▶ closed
 */
export type TunnelState =
  | { kind: 'connecting'; attempt: number }
  | { kind: 'connected'; since: number }
  | { kind: 'disconnected'; reason: string; retryInMs: number; attempt: number }
  | { kind: 'closed' };
