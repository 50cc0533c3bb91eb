import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { Agent } from 'undici';
import { AgentError, ErrorCodes } from '../errors.js';
import { nonPublicKind, refusalMessage } from './address-policy.js';

/** Resolves a host name to every address (the DNS step of an external connection; injectable). */
export type Resolve = (hostname: string) => Promise<LookupAddress[]>;

export const systemResolve: Resolve = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

export interface UpstreamLimits {
  /** Time to the response head. */
  headersTimeoutMs: number;
  /** Longest silence while a body streams (token streams pause between tokens). */
  idleTimeoutMs: number;
}

/** Keep-alive pool for replicas (plain HTTP on the agent's Docker network). */
export function replicaDispatcher(limits: UpstreamLimits): Agent {
  return new Agent({
    headersTimeout: limits.headersTimeoutMs,
    bodyTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: 4_000,
    connect: { timeout: 10_000 },
  });
}

/**
 * Throws UPSTREAM_ADDRESS_REFUSED when `address` may not be reached. A literal
 * IP in external_url never goes through DNS, so the proxy checks it with this before connecting.
 */
export function assertAllowedAddress(host: string, address: string, allowPrivate: boolean): void {
  if (allowPrivate) return;
  const kind = nonPublicKind(address);
  if (kind !== undefined) throw new AgentError(ErrorCodes.UPSTREAM_ADDRESS_REFUSED, refusalMessage(host, address, kind));
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * The `lookup` undici's connector hands to net/tls: resolves with `resolve`, refuses the whole
 * host when any address is not allowed (no retry on another record), and returns exactly the
 * checked addresses, so the socket connects to what was checked (no second resolution). TLS keeps
 * `servername`/hostname verification on the original host name, since only the lookup changes.
 */
export function guardedLookup(resolve: Resolve, allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean } | number, callback: LookupCallback): void => {
    const all = typeof options === 'object' && options.all === true;
    resolve(hostname).then(
      (addresses) => {
        try {
          if (addresses.length === 0) throw new AgentError(ErrorCodes.UPSTREAM, `external_url host "${hostname}" has no address`);
          for (const a of addresses) assertAllowedAddress(hostname, a.address, allowPrivate);
        } catch (err) {
          callback(err as NodeJS.ErrnoException, all ? [] : '', 0);
          return;
        }
        const first = addresses[0] as LookupAddress;
        if (all) callback(null, addresses);
        else callback(null, first.address, first.family);
      },
      (err: unknown) => {
        const e = new AgentError(ErrorCodes.UPSTREAM, `cannot resolve external_url host "${hostname}": ${(err as Error).message}`, { cause: err });
        callback(e as unknown as NodeJS.ErrnoException, all ? [] : '', 0);
      },
    );
  };
}

/** Pool for external services: https with the guarded lookup; redirects are never followed. */
export function externalDispatcher(options: UpstreamLimits & { allowPrivate: boolean; resolve?: Resolve; caPem?: string }): Agent {
  return new Agent({
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.idleTimeoutMs,
    keepAliveTimeout: 10_000,
    connect: {
      timeout: 15_000,
      lookup: guardedLookup(options.resolve ?? systemResolve, options.allowPrivate) as never,
      ...(options.caPem === undefined ? {} : { ca: options.caPem }),
    },
  });
}

/** True for an IP literal host (URL hosts keep IPv6 in brackets). */
export function literalAddress(urlHostname: string): string | undefined {
  const bare = urlHostname.startsWith('[') ? urlHostname.slice(1, -1) : urlHostname;
  return isIP(bare) === 0 ? undefined : bare;
}
