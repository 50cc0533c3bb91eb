import { checkStreamFrame } from './stream-frame-check.js';
import { ProtocolErrorCodes } from '../errors.js';
import { z } from 'zod';
import {
  credentialResolveFrame,
  credentialResolvedFrame,
  streamEndFrame,
  streamOpenFrame,
  streamResetFrame,
  streamResponseFrame,
  streamWindowFrame,
} from './protocol-stream.js';

/**
 * The tunnel protocol between agent and gateway (docs/protocol.md is the prose version).
 *
 * JSON text frames `{type, ...}` for control, binary frames for stream data (protocol-stream.ts).
 * Versioning: PROTOCOL_VERSION changes only for breaking changes; new optional fields and new frame
 * types are additive and do not bump it. Receivers ignore unknown fields and answer unknown frame
 * types with an `error` frame, never by closing.
 */

export * from './protocol-constants.js';


/** `undefined` on the wire is an absent key (or null); the domain types want the key present. */
function maybe<T extends z.ZodType>(schema: T) {
  return schema.nullish().transform((v) => (v ?? undefined) as z.output<T> | undefined);
}

const label = z.string().min(1).max(253);
const agentId = z.string().min(1).max(253);

/**
 * One GPU as the agent reports it: vram in MiB (null when unknown), device_type the vendor in lower
 * case. The gateway's REST API converts to Cyberun's bytes and names (gateway/agent-view.ts).
 * `healthy: false` marks a GPU the agent gives to no new replica (`unhealthy_reason` says why);
 * absent (older agents) means healthy.
 */
export const gpuDeviceWire = z.object({
  device_name: z.string(),
  device_type: z.string(),
  vram_total: z.number().nonnegative().nullable(),
  vram_free: z.number().nonnegative().nullable(),
  healthy: z.boolean().optional(),
  unhealthy_reason: z.string().max(1024).optional(),
});
export type GpuDeviceWire = z.infer<typeof gpuDeviceWire>;

/** GPUs of a hello that may take new replicas. */
export function healthyGpuCount(hello: Pick<HelloFrame, 'gpu_devices'>): number {
  return hello.gpu_devices.filter((d) => d.healthy !== false).length;
}

const replicaPhase = z.enum([
  'pending',
  'pulling',
  'creating',
  'starting',
  'ready',
  'unhealthy',
  'crashed',
  'backoff',
  'failed',
  'stopping',
  'rejected',
]);

const replicaStatus = z.object({
  index: z.number().int().nonnegative(),
  phase: replicaPhase,
  reason: maybe(z.string()),
  containerId: maybe(z.string()),
  gpuIds: z.array(z.string()),
  restartCount: z.number().int().nonnegative(),
  pull: maybe(
    z.object({
      currentBytes: z.number().nonnegative(),
      totalBytes: z.number().nonnegative(),
      etaSeconds: maybe(z.number()),
    }),
  ),
  since: z.number(),
  specHash: maybe(z.string()),
});

/** A ServiceStatusReport (src/domain/status-types.ts); its parsed output is assignable to it. */
export const serviceStatusReportWire = z.object({
  serviceId: z.string().min(1),
  slug: z.string(),
  state: z.enum(['deploying', 'running', 'stopping', 'stopped', 'failed']),
  reason: maybe(z.string()),
  desiredReplicas: z.number().int().nonnegative(),
  readyReplicas: z.number().int().nonnegative(),
  replicas: z.array(replicaStatus),
  specHash: z.string(),
  /** Added after version 2 shipped: absent from older agents. */
  warnings: z.array(z.string().max(2_000)).max(20).optional().transform((v) => v ?? []),
  updatedAt: z.number(),
});

// ── agent → gateway ─────────────────────────────────────────────────────────────────────────────

export const helloFrame = z.object({
  type: z.literal('hello'),
  agent_id: agentId,
  agent_version: z.string().min(1),
  protocol_version: z.number().int().positive(),
  labels: z.array(label).max(512),
  platform_arch: z.string().min(1),
  gpu_devices: z.array(gpuDeviceWire).max(1024),
  /** Ids of the services the agent currently runs or holds as desired. */
  service_ids: z.array(z.string()).max(100_000),
});

export const serviceStatusFrame = z.object({
  type: z.literal('service.status'),
  status: serviceStatusReportWire,
});

/** The agent's full status set: services absent from it are no longer known to the agent. */
export const statusSnapshotFrame = z.object({
  type: z.literal('status.snapshot'),
  services: z.array(serviceStatusReportWire).max(100_000),
});

export const heartbeatFrame = z.object({
  type: z.literal('heartbeat'),
  /** Replicas whose container is running (starting, ready or unhealthy). */
  running_count: z.number().int().nonnegative(),
  /** Healthy GPUs in the agent's inventory (those new replicas may get). */
  gpu_capacity: z.number().int().nonnegative(),
  /** Sum of free GPU memory in MiB; null when unknown. */
  gpu_memory_free: z.number().nonnegative().nullable(),
  /** Fresh per-device numbers, when the agent has them. */
  gpu_devices: z.array(gpuDeviceWire).max(1024).optional(),
});

export const errorFrame = z.object({
  type: z.literal('error'),
  code: z.string().min(1),
  message: z.string(),
  /** The `type` of the frame this answers, when it answers one. */
  in_reply_to: z.string().optional(),
  /** The service the error is about, when there is one. */
  service_id: z.string().optional(),
});

// ── gateway → agent ─────────────────────────────────────────────────────────────────────────────

export const welcomeFrame = z.object({
  type: z.literal('welcome'),
  protocol_version: z.number().int().positive(),
  heartbeat_interval_ms: z.number().int().min(100).max(3_600_000),
});

/**
 * The complete desired set for this agent. Each `definition` is checked by the agent with the service
 * definition schema one by one, so one bad definition does not discard the others.
 */
export const servicesSyncFrame = z.object({
  type: z.literal('services.sync'),
  revision: z.number().int().nonnegative(),
  services: z
    .array(z.object({ id: z.string().min(1), definition: z.record(z.string(), z.unknown()), deployed_at: z.number().int().nonnegative().optional() }))
    .max(100_000),
});

export type HelloFrame = z.infer<typeof helloFrame>;
export type ServiceStatusFrame = z.infer<typeof serviceStatusFrame>;
export type StatusSnapshotFrame = z.infer<typeof statusSnapshotFrame>;
export type HeartbeatFrame = z.infer<typeof heartbeatFrame>;
export type ErrorFrame = z.infer<typeof errorFrame>;
export type WelcomeFrame = z.infer<typeof welcomeFrame>;
export type ServicesSyncFrame = z.infer<typeof servicesSyncFrame>;

const agentFrameSchemas = {
  hello: helloFrame,
  'service.status': serviceStatusFrame,
  'status.snapshot': statusSnapshotFrame,
  heartbeat: heartbeatFrame,
  error: errorFrame,
  'stream.response': streamResponseFrame,
  'stream.window': streamWindowFrame,
  'stream.end': streamEndFrame,
  'stream.reset': streamResetFrame,
  'credential.resolve': credentialResolveFrame,
} as const;

const gatewayFrameSchemas = {
  welcome: welcomeFrame,
  'services.sync': servicesSyncFrame,
  error: errorFrame,
  'stream.open': streamOpenFrame,
  'stream.window': streamWindowFrame,
  'stream.end': streamEndFrame,
  'stream.reset': streamResetFrame,
  'credential.resolved': credentialResolvedFrame,
} as const;

type FrameOf<M extends Record<string, z.ZodType>> = { [K in keyof M]: z.output<M[K]> }[keyof M];

/** Every frame the agent sends. */
export type AgentFrame = FrameOf<typeof agentFrameSchemas>;
/** Every frame the gateway sends. */
export type GatewayFrame = FrameOf<typeof gatewayFrameSchemas>;

export type ParseResult<F> =
  | { ok: true; frame: F }
  | { ok: false; code: string; message: string; inReplyTo: string | undefined };

/** Parses a text frame from the agent. Never throws. */
export function parseAgentFrame(text: string): ParseResult<AgentFrame> {
  return parseWith(text, agentFrameSchemas) as ParseResult<AgentFrame>;
}

/** Parses a text frame from the gateway. Never throws. */
export function parseGatewayFrame(text: string): ParseResult<GatewayFrame> {
  return parseWith(text, gatewayFrameSchemas) as ParseResult<GatewayFrame>;
}

function parseWith(text: string, schemas: Record<string, z.ZodType>): ParseResult<unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return { ok: false, code: ProtocolErrorCodes.INVALID_JSON, message: `frame is not valid JSON: ${detail}`, inReplyTo: undefined };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, code: ProtocolErrorCodes.INVALID_FRAME, message: 'frame must be a JSON object with a string "type"', inReplyTo: undefined };
  }
  const type = (raw as { type?: unknown }).type;
  if (typeof type !== 'string') {
    return { ok: false, code: ProtocolErrorCodes.INVALID_FRAME, message: 'frame must be a JSON object with a string "type"', inReplyTo: undefined };
  }
  const schema = Object.hasOwn(schemas, type) ? schemas[type] : undefined;
  if (schema === undefined) {
    const known = Object.keys(schemas).join(', ');
    return { ok: false, code: ProtocolErrorCodes.UNKNOWN_TYPE, message: `unknown frame type "${truncate(type)}" (expected one of ${known})`, inReplyTo: truncate(type) };
  }
  // Stream frames, several per proxied request, are checked by hand; zod answers the rest and
  // words every error (stream-frame-check.ts).
  const fast = checkStreamFrame(type, raw as Record<string, unknown>);
  if (fast !== undefined) return { ok: true, frame: fast };
  const result = schema.safeParse(raw);
  if (!result.success) {
    return { ok: false, code: ProtocolErrorCodes.INVALID_FRAME, message: `${type}: ${formatZodIssues(result.error.issues)}`, inReplyTo: type };
  }
  return { ok: true, frame: result.data };
}

/** `path: message; path: message` with paths like `services[2].spec`. At most 5 issues. */
export function formatZodIssues(issues: readonly z.core.$ZodIssue[]): string {
  const parts = issues.slice(0, 5).map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
  if (issues.length > 5) parts.push(`… and ${issues.length - 5} more`);
  return parts.join('; ');
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(frame)' : out;
}

function truncate(value: string): string {
  return value.length > 64 ? `${value.slice(0, 64)}…` : value;
}

/** Serializes a frame. The one place frames become text. */
export function encodeFrame(frame: AgentFrame | GatewayFrame): string {
  return JSON.stringify(frame);
}
