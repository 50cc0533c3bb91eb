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
import * as z from 'zod';

import { AgentError, ErrorCodes } from '../errors.js';
import { FULL, SLUG_PATTERN, ENV_NAME_PATTERN, UUID_PATTERN, emptyAsAbsent, externalUrlProblem, fsPathProblem, httpPathProblem, integer, maxLength, nullAsAbsent, stringWith } from './field-checks.js';
import { imageReferenceProblem } from './image-reference.js';
import { describeValue, formatIssues, formatPath, kindOf, unknownFieldIssue, valueAt } from './issue-text.js';
import type { DefinitionIssue, ServiceDefinition } from './types.js';

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
  docker_image: stringWith('must be an image reference string, e.g. "vllm/vllm-openai:latest"', imageReferenceProblem)
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

export type ValidationResult = { ok: true; value: ServiceDefinition } | { ok: false; issues: DefinitionIssue[] };

function toDefinitionIssues(zodIssues: readonly z.core.$ZodIssue[], input: unknown): DefinitionIssue[] {
  const issues: DefinitionIssue[] = [];
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
  return { ok: false, issues: toDefinitionIssues(result.error.issues, input) };
}

/** All issues, one per line; each message names its own path. */
/** Like validateServiceDefinition, but throws AgentError(SPEC_INVALID) with `details.issues`. */
export function parseServiceDefinition(input: unknown): ServiceDefinition {
  const result = validateServiceDefinition(input);
  if (result.ok) return result.value;
  throw new AgentError(ErrorCodes.SPEC_INVALID, formatIssues(result.issues), { details: { issues: result.issues } });
}
