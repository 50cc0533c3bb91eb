import { AgentError, ErrorCodes } from '../errors.js';

/** A resolved credential: the Authorization header value and how long it may be cached. */
export interface ResolvedCredential {
  value: string;
  ttlMs: number | undefined;
}

export interface CredentialCacheOptions {
  /** Asks the gateway (credential.resolve over the tunnel). */
  fetch: (serviceId: string, credentialId: string) => Promise<ResolvedCredential>;
  /** Used when the gateway names no ttl; default 5 min. */
  defaultTtlMs?: number;
  now?: () => number;
}

/**
 * In-memory cache of credential values for external services, keyed by (service, credential)
 * because the gateway answers per service. Concurrent misses share one request; failures are not
 * cached. Values live only in this map and are never logged.
 */
export class CredentialCache {
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(private readonly options: CredentialCacheOptions) {}

  async get(serviceId: string, credentialId: string): Promise<string> {
    const now = this.options.now ?? Date.now;
    const key = `${serviceId}\u0000${credentialId}`;
    const hit = this.entries.get(key);
    if (hit !== undefined && hit.expiresAt > now()) return hit.value;
    this.entries.delete(key);
    let pending = this.inflight.get(key);
    if (pending === undefined) {
      pending = this.options
        .fetch(serviceId, credentialId)
        .then((r) => {
          const ttl = r.ttlMs ?? this.options.defaultTtlMs ?? 300_000;
          if (ttl > 0) this.entries.set(key, { value: r.value, expiresAt: now() + ttl });
          return r.value;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  /** Forgets every value (e.g. when the desired set changes). */
  clear(): void {
    this.entries.clear();
  }
}

/**
 * Pending credential.resolve requests of one tunnel, matched to credential.resolved answers by
 * request id. Each has a timeout; a lost connection fails them all.
 */
export class CredentialRequests {
  private readonly pending = new Map<string, { resolve: (r: ResolvedCredential) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private seq = 0;

  constructor(private readonly timeoutMs = 10_000) {}

  /** Registers a request; `send` transmits the frame with the given request id. */
  request(send: (requestId: string) => boolean, credentialId: string): Promise<ResolvedCredential> {
    const requestId = `cr-${++this.seq}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new AgentError(ErrorCodes.UPSTREAM, `the gateway did not resolve credential ${credentialId} within ${this.timeoutMs} ms`, { retryable: true }));
      }, this.timeoutMs);
      this.pending.set(requestId, { resolve, reject, timer });
      if (!send(requestId)) this.fail(requestId, 'the tunnel to the gateway is not connected');
    });
  }

  answer(requestId: string, result: ResolvedCredential | { code: string; message: string }): void {
    const p = this.pending.get(requestId);
    if (p === undefined) return;
    this.pending.delete(requestId);
    clearTimeout(p.timer);
    if ('value' in result) p.resolve(result);
    else p.reject(new AgentError(ErrorCodes.UPSTREAM, `the gateway refused to resolve the credential (${result.code}): ${result.message}`));
  }

  failAll(reason: string): void {
    for (const id of [...this.pending.keys()]) this.fail(id, reason);
  }

  private fail(requestId: string, reason: string): void {
    const p = this.pending.get(requestId);
    if (p === undefined) return;
    this.pending.delete(requestId);
    clearTimeout(p.timer);
    p.reject(new AgentError(ErrorCodes.UPSTREAM, `credential could not be resolved: ${reason}`, { retryable: true }));
  }
}
