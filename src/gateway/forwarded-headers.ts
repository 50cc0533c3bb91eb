import type { IncomingMessage } from 'node:http';
import { relayedRawHeaders, stripHopByHop, type WireHeaders } from '../tunnel/http-headers.js';

/** Headers the gateway consumes (or that name the gateway) and never relays. */
export const GATEWAY_ONLY = ['host', 'authorization', 'x-team-id'];

/**
 * Headers that tell a service who the client is and how it reached the gateway. The gateway is the
 * edge: what a client sends in them is dropped, and the gateway sets `Forwarded`,
 * `X-Forwarded-For`, `-Host` and `-Proto` itself (a client could otherwise pose as any address or
 * origin to a service that trusts its proxy).
 */
export const EDGE_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-server', 'x-real-ip'];

/** What the gateway knows first-hand about one request. */
export interface EdgeFacts {
  /** The TCP peer's address; undefined when the socket is gone. */
  clientAddress: string | undefined;
  /** The Host the client asked for; undefined without one (HTTP/1.0). */
  host: string | undefined;
  proto: 'http' | 'https';
}

export function edgeFacts(req: IncomingMessage): EdgeFacts {
  return {
    clientAddress: req.socket.remoteAddress,
    host: req.headers.host,
    proto: 'encrypted' in req.socket ? 'https' : 'http',
  };
}

/**
 * `headers` without hop-by-hop fields, GATEWAY_ONLY, EDGE_HEADERS and `drop`, plus the gateway's
 * own forwarding headers from `facts`. Pure.
 */
export function withEdgeHeaders(headers: Readonly<Record<string, string | string[] | undefined>>, facts: EdgeFacts, drop: readonly string[] = []): WireHeaders {
  return addEdgeHeaders(stripHopByHop(headers, [...GATEWAY_ONLY, ...EDGE_HEADERS, ...drop]), facts);
}

const NOT_FORWARDED: ReadonlySet<string> = new Set([...GATEWAY_ONLY, ...EDGE_HEADERS]);

/** The caller's headers as the service gets them (transparent proxy, WebSocket pass-through). */
export function forwardedHeaders(req: IncomingMessage): WireHeaders {
  return addEdgeHeaders(relayedRawHeaders(req.rawHeaders, NOT_FORWARDED), edgeFacts(req));
}

/**
 * The last `Forwarded` value built, with what it was built from: a client's requests share it, so
 * most requests reuse it (the result stays a function of the facts alone). Building it for a host
 * with a port (quoted, two regex replaces) took 3.8–6.4 µs; reusing it 0.02–0.13 µs.
 */
let lastForwarded = { address: undefined as string | undefined, host: undefined as string | undefined, proto: '', value: '' };

/** Sets the gateway's own forwarding headers on `out` (which holds none of EDGE_HEADERS). */
function addEdgeHeaders(out: WireHeaders, facts: EdgeFacts): WireHeaders {
  out['x-forwarded-for'] = facts.clientAddress ?? 'unknown';
  out['x-forwarded-proto'] = facts.proto;
  if (facts.host !== undefined) out['x-forwarded-host'] = facts.host;
  const last = lastForwarded;
  if (last.address !== facts.clientAddress || last.host !== facts.host || last.proto !== facts.proto) {
    const parts = [`for=${forwardedNode(facts.clientAddress)}`];
    if (facts.host !== undefined) parts.push(`host=${tokenOrQuoted(facts.host)}`);
    parts.push(`proto=${facts.proto}`);
    lastForwarded = { address: facts.clientAddress, host: facts.host, proto: facts.proto, value: parts.join(';') };
  }
  out['forwarded'] = lastForwarded.value;
  return out;
}

/** RFC 7239 §6 node: an IPv4 address as is, IPv6 as `"[…]"`, `unknown` without one. */
function forwardedNode(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  return address.includes(':') ? `"[${address}]"` : address;
}

function tokenOrQuoted(value: string): string {
  if (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)) return value;
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\x00-\x1f\x7f]/g, '')}"`;
}
