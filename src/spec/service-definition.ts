/**
 * The contract of a Cyberun service definition (the body of `POST /api/v1/containers`) and of the
 * local gateway's `PUT /containers/{id}` body. Rules from CYBERUN-API.md are applied as published;
 * where the API is silent this project decides, as a GPU-host operator would want
 * (docs/service-definition.md explains each choice):
 *
 * - Unknown fields are rejected, each named (a typo like `replicas` must never be ignored).
 * - `docker_image` on an external service and `external_url` or `external_auth_credential_id` on a
 *   deployed one are rejected, not ignored.
 * - `null` means "absent" for fields that have no default and whose absence is meaningful:
 *   service_desc, usage_prompt, openapi_url, docker_image, external_url,
 *   external_auth_credential_id, and the arrays env_config, volume_config, required_labels (null =
 *   empty). Backends that serialize nil values as null round-trip cleanly. For defaulted scalars
 *   (service_type, exposed_port, health_path, gpu_count, replica_count) and required fields
 *   (service_slug, display_name) null is a type error: silently defaulting a port or GPU count
 *   would change what runs.
 * - An empty service_desc, usage_prompt or openapi_url normalizes to absent (the way to clear one
 *   in an update).
 * - env_name is POSIX (`^[A-Za-z_][A-Za-z0-9_]*$`), unique (case-sensitive); env_value is a string
 *   without NUL and is never echoed in a message (it may hold a secret).
 * - container_path is absolute, normalized, not `/`; host_path is absolute and normalized (the
 *   allowlist is the agent's, src/domain/volume-policy.ts); neither contains ':' or control
 *   characters; container paths are unique.
 * - health_path and openapi_url start with `/` (not `//`), ≤ 500 chars, no whitespace.
 * - docker_image is a Docker reference `[host[:port]/]repository[:tag][@sha256:<64 hex>]` with a
 *   lowercase repository; external_url is `https://` with a host and no user:password.
 * - external_auth_credential_id is a UUID, normalized to lowercase.
 * - required_labels are non-empty strings without whitespace, deduplicated (first occurrence kept),
 *   compared case-sensitively.
 *
 * Validation reports every issue at once, each with a JSON path and a message that names the
 * rule, the offending value (truncated; never an env value) and the fix.
 */
import path from 'node:path';

import * as z from 'zod';

import { AgentError, ErrorCodes } from '../errors.js';
import type { ServiceDefinition, SpecIssue } from './types.js';

// ---- issue text ---------------------------------------------------------------------------------

/** Anything under env_config except an env_name may be a secret: its value is never shown. */
const SECRET_PATH = /^env_config(?!\[\d+\]\.env_name$)/;
const SHOWN_CHARS = 60;

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** The value as a message shows it: strings quoted and truncated, URL credentials masked. */
function describeValue(value: unknown, at: string): string {
  if (SECRET_PATH.test(at)) return `(${kindOf(value)}, value hidden)`;
  if (typeof value === 'string') {
    const masked = value.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/?#@]*@/, '$1***@');
    if (masked.length <= SHOWN_CHARS) return JSON.stringify(masked);
    return `${JSON.stringify(`${masked.slice(0, SHOWN_CHARS)}…`)} (${value.length} chars)`;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return `(${kindOf(value)})`;
}

/** `['env_config', 1, 'env_name']` → `env_config[1].env_name`; `[]` → `(root)`. */
function formatPath(parts: readonly (string | number)[]): string {
  if (parts.length === 0) return '(root)';
  let out = '';
  for (const part of parts) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

function valueAt(input: unknown, parts: readonly (string | number)[]): unknown {
  let current = input;
  for (const part of parts) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string | number, unknown>)[part];
  }
  return current;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, substitution));
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}

/** The known field an unknown key most likely meant (`replicas` → `replica_count`), if any. */
function suggestField(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const close = known.filter((k) => editDistance(lower, k) <= 2);
  if (close[0] !== undefined) return close[0];
  const stem = lower.replace(/s$/, '');
  if (stem.length < 3) return undefined;
  return known.find((k) => k.includes(stem) || stem.includes(k));
}

function unknownFieldIssue(parts: readonly (string | number)[], key: string, known: readonly string[]): SpecIssue {
  const at = formatPath([...parts, key]);
  const guess = suggestField(key, known);
  return { path: at, message: `${at} is not a known field${guess === undefined ? '' : ` (did you mean ${guess}?)`}: remove it` };
}

// ---- schema -------------------------------------------------------------------------------------

export const SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{1,98}[a-z0-9]$/;
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** Marks a custom issue whose message is already a full sentence (it names its own path). */
const FULL = { full: true } as const;

type Check = (value: string) => string | undefined;

function stringWith(typeMessage: string, ...checks: Check[]) {
  return z.string({ error: typeMessage }).superRefine((value, ctx) => {
    for (const check of checks) {
      const problem = check(value);
      if (problem !== undefined) {
        ctx.addIssue({ code: 'custom', message: problem, input: value });
        return;
      }
    }
  });
}

/** Integer in [min, max]; a custom check, because zod's `.int()` stops the cross-field checks. */
function integer(min: number, max: number, message: string) {
  return z
    .number({ error: message })
    .refine((n) => Number.isSafeInteger(n) && n >= min && n <= max, { message });
}

const maxLength = (max: number): Check => (v) => (v.length > max ? `must be at most ${max} characters (got ${v.length})` : undefined);

function httpPathProblem(v: string, example: string): string | undefined {
  if (!v.startsWith('/') || v.startsWith('//')) return `must be a path on the container starting with '/' (not '//'), e.g. "${example}"`;
  if (/\s/.test(v) || CONTROL_CHARS.test(v)) return 'must not contain whitespace or control characters (percent-encode them)';
  return undefined;
}

function fsPathProblem(v: string, allowRoot: boolean): string | undefined {
  if (!v.startsWith('/')) return `must be an absolute path (starting with '/')`;
  if (v.includes(':') || CONTROL_CHARS.test(v)) return `must not contain ':' or control characters (Docker's bind syntax splits on ':')`;
  const normal = path.posix.normalize(v);
  const canonical = normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
  if (canonical !== v) return `must be a normalized path without '.', '..', '//' or a trailing '/' (did you mean "${canonical}"?)`;
  if (!allowRoot && v === '/') return `must not be '/' (a mount cannot replace the container's root)`;
  return undefined;
}

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]{1,5})?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const REFERENCE_SHAPE = 'expected [registry[:port]/]repository[:tag][@sha256:<64 hex>], e.g. "vllm/vllm-openai:latest"';

/** Docker's reference grammar (distribution/reference), restricted to sha256 digests. */
function dockerReferenceProblem(ref: string): string | undefined {
  const bad = (why: string) => `is not a valid image reference: ${why}; ${REFERENCE_SHAPE}`;
  if (ref.length === 0) return bad('it is empty');
  let rest = ref;
  const at = rest.indexOf('@');
  if (at >= 0) {
    if (!DIGEST.test(rest.slice(at + 1))) return bad(`the digest must be "sha256:" followed by 64 lowercase hex characters`);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    if (!TAG.test(rest.slice(colon + 1))) return bad(`the tag must be 1–128 of A-Z a-z 0-9 _ . - and not start with '.' or '-'`);
    rest = rest.slice(0, colon);
  }
  if (rest.length > 255) return bad('the name is longer than 255 characters');
  const parts = rest.split('/');
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!DOMAIN.test(first)) return bad(`the registry "${first}" is not a valid host[:port]`);
    parts.shift();
  }
  for (const part of parts) {
    if (PATH_COMPONENT.test(part)) continue;
    if (PATH_COMPONENT.test(part.toLowerCase())) return bad('the repository must be lowercase');
    return bad(`"${part}" is not a valid repository component (a-z, 0-9, separated by '.', '_', '__' or '-')`);
  }
  return undefined;
}

function externalUrlProblem(v: string): string | undefined {
  if (v.length > 2048) return `must be at most 2048 characters (got ${v.length})`;
  if (!v.startsWith('https://')) return 'must start with https:// (plain http is refused)';
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return 'is not a valid URL; expected https://host[:port][/path]';
  }
  if (url.hostname === '') return 'must name a host, e.g. https://api.example.com/v1';
  if (url.username !== '' || url.password !== '') {
    return 'must not embed credentials (user:password@); store them as a credential and set external_auth_credential_id';
  }
  return undefined;
}

const nullAsAbsent = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
const emptyAsAbsent = (v: string | null | undefined): string | undefined => (v === null || v === '' ? undefined : v);

const envVarSchema = z.strictObject(
  {
    env_name: stringWith(
      `must be a string matching ${ENV_NAME_PATTERN.source}`,
      (v) => (ENV_NAME_PATTERN.test(v) ? undefined : `must match ${ENV_NAME_PATTERN.source} (letters, digits and '_', not starting with a digit)`),
    ),
    env_value: stringWith('must be a string (quote numbers and booleans)', (v) =>
      v.includes('\u0000') ? 'must not contain NUL characters' : undefined,
    ),
  },
  { error: 'must be an object {"env_name": ..., "env_value": ...}' },
);

const volumeMountSchema = z.strictObject(
  {
    host_path: stringWith('must be an absolute path string', (v) => fsPathProblem(v, true)),
    container_path: stringWith('must be an absolute path string', (v) => fsPathProblem(v, false)),
  },
  { error: 'must be an object {"host_path": ..., "container_path": ...}' },
);

const labelSchema = stringWith('must be a string', (v) =>
  v.length === 0 || /\s/.test(v) ? 'must be a non-empty label without whitespace, e.g. "a100"' : undefined,
);

const SLUG_RULE = `must match ${SLUG_PATTERN.source} (3–100 chars of a-z, 0-9, '-', not starting or ending with '-')`;

const shape = {
  service_slug: stringWith(SLUG_RULE, (v) => (SLUG_PATTERN.test(v) ? undefined : SLUG_RULE)),
  display_name: stringWith('must be a string of 1–255 characters', maxLength(255), (v) =>
    v.trim() === '' ? 'must not be blank' : undefined,
  ),
  service_desc: z.string({ error: 'must be a string (or null for none)' }).nullish().transform(emptyAsAbsent),
  service_type: z.enum(['deployed', 'external'], { error: 'must be "deployed" or "external"' }).default('deployed'),
  docker_image: stringWith('must be an image reference string, e.g. "vllm/vllm-openai:latest"', dockerReferenceProblem)
    .nullish()
    .transform(nullAsAbsent),
  external_url: stringWith('must be an https:// URL string', externalUrlProblem).nullish().transform(nullAsAbsent),
  external_auth_credential_id: stringWith('must be a UUID string', (v) =>
    UUID_PATTERN.test(v) ? undefined : 'must be a UUID like 3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b',
  )
    .nullish()
    .transform((v) => nullAsAbsent(v)?.toLowerCase()),
  exposed_port: integer(1, 65535, 'must be an integer from 1 to 65535 (the port the service listens on in the container)').default(8080),
  health_path: stringWith('must be a path string starting with "/"', maxLength(500), (v) => httpPathProblem(v, '/health')).default('/health'),
  env_config: z
    .array(envVarSchema, { error: 'must be an array of {"env_name", "env_value"} objects' })
    .nullish()
    .transform((v) => v ?? []),
  volume_config: z
    .array(volumeMountSchema, { error: 'must be an array of {"host_path", "container_path"} objects' })
    .nullish()
    .transform((v) => v ?? []),
  required_labels: z
    .array(labelSchema, { error: 'must be an array of label strings' })
    .nullish()
    .transform((v) => [...new Set(v ?? [])]),
  gpu_count: integer(-1, Number.MAX_SAFE_INTEGER, 'must be an integer ≥ -1 (-1 = every GPU of the host, 0 = none, N = N GPUs)').default(0),
  replica_count: integer(1, 10, 'must be an integer from 1 to 10').default(1),
  usage_prompt: z.string({ error: 'must be a string (or null for none)' }).nullish().transform(emptyAsAbsent),
  openapi_url: z
    .string({ error: 'must be a path string starting with "/", e.g. "/openapi.json"' })
    .nullish()
    .transform(emptyAsAbsent)
    .superRefine((v, ctx) => {
      const problem = v === undefined ? undefined : (maxLength(500)(v) ?? httpPathProblem(v, '/openapi.json'));
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, input: v });
    }),
};

export const SERVICE_DEFINITION_FIELDS: readonly string[] = Object.keys(shape);
const ENV_FIELDS = Object.keys(envVarSchema.shape);
const VOLUME_FIELDS = Object.keys(volumeMountSchema.shape);

type Ctx = z.core.$RefinementCtx<unknown>;

function addFull(ctx: Ctx, pathParts: (string | number)[], message: string): void {
  ctx.addIssue({ code: 'custom', path: pathParts, message, params: FULL, input: undefined });
}

/** Rules across fields. Runs even when fields failed, so every issue is reported at once. */
function crossFieldRules(value: unknown, ctx: Ctx): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
  const v = value as Record<string, unknown>;
  if (v.service_type === 'deployed') {
    if (v.docker_image === undefined) {
      addFull(ctx, ['docker_image'], 'docker_image is required for deployed services: give an image reference such as "vllm/vllm-openai:latest" (or set service_type "external" with an external_url)');
    }
    if (v.external_url !== undefined) {
      addFull(ctx, ['external_url'], 'external_url is only allowed on external services (this one is deployed): remove it, or set service_type "external"');
    }
    if (v.external_auth_credential_id !== undefined) {
      addFull(ctx, ['external_auth_credential_id'], 'external_auth_credential_id is only allowed on external services (this one is deployed): remove it');
    }
  } else if (v.service_type === 'external') {
    if (v.external_url === undefined) {
      addFull(ctx, ['external_url'], 'external_url is required for external services: give the https:// URL of the upstream API');
    }
    if (v.docker_image !== undefined) {
      addFull(ctx, ['docker_image'], 'docker_image is not allowed on external services (nothing is run): remove it, or set service_type "deployed"');
    }
  }
  flagDuplicates(ctx, v.env_config, 'env_config', 'env_name', 'each variable may be set once');
  flagDuplicates(ctx, v.volume_config, 'volume_config', 'container_path', 'a container path can hold one mount');
}

function flagDuplicates(ctx: Ctx, list: unknown, field: string, key: string, why: string): void {
  if (!Array.isArray(list)) return;
  const firstIndex = new Map<string, number>();
  list.forEach((entry: unknown, index) => {
    const name = typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>)[key] : undefined;
    if (typeof name !== 'string') return;
    const first = firstIndex.get(name);
    if (first === undefined) {
      firstIndex.set(name, index);
      return;
    }
    addFull(ctx, [field, index, key], `${field}[${index}].${key} ${describeValue(name, `${field}[${index}].${key}`)} duplicates ${field}[${first}].${key}: remove one (${why})`);
  });
}

/** The create body. Output is a normalized ServiceDefinition with every default applied. */
export const serviceDefinitionSchema = z
  .strictObject(shape, { error: 'must be a JSON object' })
  .check(z.superRefine(crossFieldRules, { when: () => true }));

export type ValidationResult = { ok: true; value: ServiceDefinition } | { ok: false; issues: SpecIssue[] };

function toSpecIssues(zodIssues: readonly z.core.$ZodIssue[], input: unknown): SpecIssue[] {
  const issues: SpecIssue[] = [];
  for (const iss of zodIssues) {
    const parts = iss.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (iss.code === 'unrecognized_keys') {
      const known = parts[0] === 'env_config' ? ENV_FIELDS : parts[0] === 'volume_config' ? VOLUME_FIELDS : SERVICE_DEFINITION_FIELDS;
      for (const key of iss.keys) issues.push(unknownFieldIssue(parts, key, known));
      continue;
    }
    const at = formatPath(parts);
    if (iss.code === 'custom' && iss.params?.full === true) {
      issues.push({ path: at, message: iss.message });
      continue;
    }
    const value = valueAt(input, parts);
    if (parts.length === 0) {
      issues.push({ path: at, message: `the service definition ${iss.message}, got ${kindOf(value)}` });
    } else if (value === undefined) {
      issues.push({ path: at, message: `${at} is required; it ${iss.message}` });
    } else {
      issues.push({ path: at, message: `${at} ${describeValue(value, at)} ${iss.message}` });
    }
  }
  const order = (p: string) => {
    const top = /^[A-Za-z_][A-Za-z0-9_]*/.exec(p)?.[0] ?? '';
    const i = SERVICE_DEFINITION_FIELDS.indexOf(top);
    return p === '(root)' ? -1 : i === -1 ? SERVICE_DEFINITION_FIELDS.length : i;
  };
  return issues.sort((a, b) => order(a.path) - order(b.path));
}

/** Validates and normalizes a create body. Pure; reports every issue at once. */
export function validateServiceDefinition(input: unknown): ValidationResult {
  const result = serviceDefinitionSchema.safeParse(input);
  if (result.success) {
    const value: ServiceDefinition = result.data;
    return { ok: true, value };
  }
  return { ok: false, issues: toSpecIssues(result.error.issues, input) };
}

/** All issues, one per line; each message names its own path. */
export function formatIssues(issues: SpecIssue[]): string {
  return issues.map((issue) => issue.message).join('\n');
}

/** Like validateServiceDefinition, but throws AgentError(SPEC_INVALID) with `details.issues`. */
export function parseServiceDefinition(input: unknown): ServiceDefinition {
  const result = validateServiceDefinition(input);
  if (result.ok) return result.value;
  throw new AgentError(ErrorCodes.SPEC_INVALID, formatIssues(result.issues), { details: { issues: result.issues } });
}

const IMMUTABLE = ['service_slug', 'service_type'] as const;
/** Fields whose null in an update means "omitted": keep the existing value. */
const ONLY_ON: Record<string, ServiceDefinition['service_type']> = {
  docker_image: 'deployed',
  external_url: 'external',
  external_auth_credential_id: 'external',
};
const NULL_KEEPS = new Set(['service_desc', 'usage_prompt', 'openapi_url', 'docker_image', 'external_url', 'external_auth_credential_id', 'env_config', 'volume_config', 'required_labels']);

/**
 * Validates a `PUT /containers/{id}` body against the stored definition. Omitted fields (and null
 * for the fields listed in NULL_KEEPS) keep their value; service_slug and service_type are
 * immutable and refused if present; unknown fields are refused; the merged result is validated
 * as a whole and returned normalized. Pure.
 */
export function validateServiceUpdate(input: unknown, existing: ServiceDefinition): ValidationResult {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, issues: [{ path: '(root)', message: `the update must be a JSON object, got ${kindOf(input)}` }] };
  }
  const issues: SpecIssue[] = [];
  const merged: Record<string, unknown> = { ...existing };
  const other = existing.service_type === 'deployed' ? 'external' : 'deployed';
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined || (value === null && NULL_KEEPS.has(key))) continue;
    if ((IMMUTABLE as readonly string[]).includes(key)) {
      issues.push({ path: key, message: `${key} is immutable after creation: remove it from the update (create a new service to change it)` });
    } else if (!SERVICE_DEFINITION_FIELDS.includes(key)) {
      issues.push(unknownFieldIssue([], key, SERVICE_DEFINITION_FIELDS));
    } else if (ONLY_ON[key] === other) {
      issues.push({ path: key, message: `${key} is only allowed on ${other} services and this one is ${existing.service_type}: remove it from the update` });
    } else {
      merged[key] = value;
    }
  }
  const result = validateServiceDefinition(merged);
  if (result.ok && issues.length === 0) return result;
  return { ok: false, issues: [...issues, ...(result.ok ? [] : result.issues)] };
}
