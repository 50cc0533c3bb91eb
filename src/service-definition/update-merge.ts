import type { DefinitionIssue, ServiceDefinition } from './types.js';
import { kindOf, unknownFieldIssue } from './issue-text.js';
import { SERVICE_DEFINITION_FIELDS, validateServiceDefinition, type ValidationResult } from './schema.js';

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
  const issues: DefinitionIssue[] = [];
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
