import { createHash } from 'node:crypto';

import type { ServiceDefinition } from './types.js';

/**
 * JSON with object keys sorted (by UTF-16 code unit, recursively) and no whitespace, so equal
 * data always gives equal text whatever the key order it was built with. Arrays keep their order
 * (order is meaning: env order, mount order). Object properties whose value is undefined are
 * dropped; undefined inside an array becomes null, as in JSON.stringify. Values with `toJSON`
 * (Date) are serialized through it. Throws TypeError on bigint, function, symbol and cycles:
 * a hash over data that JSON cannot carry would not be reproducible elsewhere.
 */
export function canonicalJson(value: unknown): string {
  return serialize(value, new Set());
}

function serialize(value: unknown, ancestors: Set<object>): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'bigint':
    case 'function':
    case 'symbol':
    case 'undefined':
      throw new TypeError(`canonicalJson cannot serialize a ${typeof value}`);
    default:
      break;
  }
  const object = value as object;
  const withToJson = object as { toJSON?: unknown };
  if (typeof withToJson.toJSON === 'function') return serialize((withToJson.toJSON as () => unknown).call(object), ancestors);
  if (ancestors.has(object)) throw new TypeError('canonicalJson cannot serialize a cyclic structure');
  ancestors.add(object);
  let out: string;
  if (Array.isArray(object)) {
    out = `[${object.map((item: unknown) => (item === undefined || typeof item === 'function' || typeof item === 'symbol' ? 'null' : serialize(item, ancestors))).join(',')}]`;
  } else {
    const record = object as Record<string, unknown>;
    const members: string[] = [];
    for (const key of Object.keys(record).sort()) {
      const member = record[key];
      if (member === undefined) continue;
      members.push(`${JSON.stringify(key)}:${serialize(member, ancestors)}`);
    }
    out = `{${members.join(',')}}`;
  }
  ancestors.delete(object);
  return out;
}

/** sha256 (lowercase hex, 64 chars) of canonicalJson(value). */
export function specHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value), 'utf8').digest('hex');
}

/**
 * Identity of what a replica container IS: 16 hex chars of the sha256 over exactly the fields
 * baked into `docker create` — docker_image, env_config, volume_config, exposed_port, gpu_count.
 * A running replica whose recorded hash differs from the desired one must be replaced; one whose
 * hash matches must be left alone.
 *
 * Deliberately left out, so that changing them never restarts a replica:
 * - display_name, service_desc, usage_prompt, openapi_url: descriptive, read by people and agents;
 * - replica_count: scaling adds or removes replicas, it does not change the ones that run;
 * - required_labels: placement input, not container content (a host that no longer qualifies is
 *   the placement's decision, not a hash mismatch);
 * - health_path: read by the prober on each probe, not part of the container;
 * - service_slug, service_type, external_*: immutable or not run as a container.
 *
 * Env and volume order count (the order is what Docker receives); key order of the input does
 * not. Changing this field list changes every hash and so restarts every replica
 * on upgrade: do it only with that intent.
 */
export function containerSpecHash(definition: ServiceDefinition): string {
  const identity = {
    docker_image: definition.docker_image,
    env_config: definition.env_config.map(({ env_name, env_value }) => ({ env_name, env_value })),
    volume_config: definition.volume_config.map(({ host_path, container_path }) => ({ host_path, container_path })),
    exposed_port: definition.exposed_port,
    gpu_count: definition.gpu_count,
  };
  return specHash(identity).slice(0, 16);
}
