import { hash, timingSafeEqual } from 'node:crypto';

/** The one implicit team of the local gateway: every sk-/dk- key belongs to it. */
export const LOCAL_TEAM_ID = '00000000-0000-4000-8000-000000000001';

export type AuthResult =
  | { ok: true; teamId: string; keyKind: 'sk' | 'dk' | 'ak' }
  | { ok: false; status: 401 | 403; message: string };

/**
 * A set of keys checked in constant time per candidate (keys are compared as SHA-256 digests, so
 * neither their content nor their length leaks through timing).
 */
export class KeySet {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.filter((k) => k.length > 0).map(digest);
  }

  has(key: string): boolean {
    const d = digest(key);
    let found = false;
    for (const candidate of this.digests) found = timingSafeEqual(candidate, d) || found;
    return found;
  }
}

/**
 * The agent keys and the agent id each is issued for. `match` compares against every key in
 * constant time per key (as KeySet) and says which agent id the key names; `agentId` undefined
 * for a shared key, which may claim any agent id.
 */
export class AgentKeyring {
  private readonly entries: Array<{ digest: Buffer; agentId: string | undefined }>;

  constructor(entries: ReadonlyArray<{ key: string; agentId: string | undefined }>) {
    this.entries = entries.filter((e) => e.key.length > 0).map((e) => ({ digest: digest(e.key), agentId: e.agentId }));
  }

  get size(): number {
    return this.entries.length;
  }

  /** Keys without an agent id. */
  get sharedCount(): number {
    return this.entries.filter((e) => e.agentId === undefined).length;
  }

  match(key: string): { agentId: string | undefined } | undefined {
    const d = digest(key);
    let found: { agentId: string | undefined } | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, d) && found === undefined) found = { agentId: entry.agentId };
    }
    return found;
  }
}

function digest(key: string): Buffer {
  // One-shot hash: no Hash object per request (this runs on every proxied request).
  return hash('sha256', key, 'buffer');
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/**
 * REST API auth: `sk-` integration keys and `dk-` device keys, team from the key (any X-Team-ID
 * is ignored). Agent keys are refused with 403; user JWTs are not supported by the local gateway.
 */
export function authenticateApi(header: string | undefined, apiKeys: KeySet): AuthResult {
  const token = bearerToken(header);
  if (token === undefined) {
    return { ok: false, status: 401, message: 'missing or malformed Authorization header: send "Authorization: Bearer sk-…" (or a dk- device key)' };
  }
  if (token.startsWith('ak-')) {
    return {
      ok: false,
      status: 403,
      message: 'agent keys (ak-…) authenticate only the agent tunnel at /api/v1/agent/connect; use an sk- or dk- key for the REST API',
    };
  }
  if (!token.startsWith('sk-') && !token.startsWith('dk-')) {
    return { ok: false, status: 401, message: 'the local gateway accepts only sk- integration keys and dk- device keys (user JWTs are not supported here)' };
  }
  if (!apiKeys.has(token)) {
    return { ok: false, status: 401, message: 'invalid API key: not one of this gateway\'s sk-/dk- keys' };
  }
  return { ok: true, teamId: LOCAL_TEAM_ID, keyKind: token.startsWith('sk-') ? 'sk' : 'dk' };
}

/**
 * `authenticateApi` with a memo per connection: a keep-alive connection that presents the same
 * Authorization header it was admitted with is not hashed and compared against every key again.
 * The memo holds only a header that verified, on the connection that sent it, and is compared in
 * constant time for its length (timingSafeEqual): what a request can learn from its timing is
 * whether its header has the length of the one its connection was admitted with (behind a proxy
 * that pools connections, possibly another client's), never any of its content. Any other header
 * (or none) goes through `authenticateApi`; a refused one is not remembered.
 */
export class ConnectionAuth {
  private readonly admitted = new WeakMap<object, { header: Buffer; result: AuthResult }>();

  constructor(private readonly keys: KeySet) {}

  check(connection: object, header: string | undefined): AuthResult {
    if (header === undefined) return authenticateApi(header, this.keys);
    const memo = this.admitted.get(connection);
    if (memo !== undefined) {
      const presented = Buffer.from(header);
      if (presented.byteLength === memo.header.byteLength && timingSafeEqual(presented, memo.header)) return memo.result;
    }
    const result = authenticateApi(header, this.keys);
    if (result.ok) this.admitted.set(connection, { header: Buffer.from(header), result });
    return result;
  }
}

/** Agent endpoint auth: only `ak-` keys; says which agent id the key is issued for (undefined: shared). */
export function authenticateAgent(header: string | undefined, agentKeys: AgentKeyring): { ok: true; agentId: string | undefined } | { ok: false; status: 401; message: string } {
  const token = bearerToken(header);
  if (token === undefined) {
    return { ok: false, status: 401, message: 'missing Authorization header: the agent must send "Authorization: Bearer ak-…"' };
  }
  if (!token.startsWith('ak-')) {
    return { ok: false, status: 401, message: 'the agent endpoint accepts only agent keys (ak-…)' };
  }
  const match = agentKeys.match(token);
  if (match === undefined) {
    return { ok: false, status: 401, message: 'agent key rejected: not one of this gateway\'s agent keys (check the ak- key the agent uses)' };
  }
  return { ok: true, agentId: match.agentId };
}
