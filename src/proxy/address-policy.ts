import { BlockList, isIP } from 'node:net';

/**
 * Which upstream addresses an external service may reach. Pure.
 *
 * Refused unless the operator allows private upstreams: loopback, RFC 1918/4193 private ranges,
 * link-local (which holds the cloud metadata service 169.254.169.254), CGNAT, "this network",
 * multicast, reserved and documentation ranges, and IPv4-mapped/NAT64 forms of any of them.
 */

type Kind = 'loopback' | 'private' | 'link-local' | 'metadata' | 'reserved';

const ranges: Array<[Kind, string, number, 'ipv4' | 'ipv6']> = [
  ['reserved', '0.0.0.0', 8, 'ipv4'],
  ['private', '10.0.0.0', 8, 'ipv4'],
  ['private', '100.64.0.0', 10, 'ipv4'],
  ['loopback', '127.0.0.0', 8, 'ipv4'],
  ['link-local', '169.254.0.0', 16, 'ipv4'],
  ['private', '172.16.0.0', 12, 'ipv4'],
  ['reserved', '192.0.0.0', 24, 'ipv4'],
  ['reserved', '192.0.2.0', 24, 'ipv4'],
  ['private', '192.168.0.0', 16, 'ipv4'],
  ['reserved', '198.18.0.0', 15, 'ipv4'],
  ['reserved', '198.51.100.0', 24, 'ipv4'],
  ['reserved', '203.0.113.0', 24, 'ipv4'],
  ['reserved', '224.0.0.0', 4, 'ipv4'],
  ['reserved', '240.0.0.0', 4, 'ipv4'],
  ['reserved', '::', 128, 'ipv6'],
  ['loopback', '::1', 128, 'ipv6'],
  ['private', 'fc00::', 7, 'ipv6'],
  ['link-local', 'fe80::', 10, 'ipv6'],
  ['reserved', 'ff00::', 8, 'ipv6'],
  ['reserved', '2001:db8::', 32, 'ipv6'],
];

const lists = new Map<Kind, BlockList>();
for (const [kind, net, prefix, family] of ranges) {
  let list = lists.get(kind);
  if (list === undefined) {
    list = new BlockList();
    lists.set(kind, list);
  }
  list.addSubnet(net, prefix, family);
}

const METADATA = new Set(['169.254.169.254', 'fd00:ec2::254', '100.100.100.200']);

/** Why `address` is not a public unicast address, or undefined when it is. */
export function nonPublicKind(address: string): Kind | undefined {
  const family = isIP(address);
  if (family === 0) return 'reserved';
  const v4 = family === 6 ? embeddedIpv4(address) : undefined;
  if (v4 !== undefined) return nonPublicKind(v4);
  if (METADATA.has(address.toLowerCase())) return 'metadata';
  for (const [kind, list] of lists) {
    if (list.check(address, family === 4 ? 'ipv4' : 'ipv6')) return kind;
  }
  return undefined;
}

/** `::ffff:a.b.c.d` (mapped) and `64:ff9b::a.b.c.d` (NAT64) carry an IPv4 address. */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const m = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/.exec(lower);
  if (m === null) return undefined;
  if (m[1] !== undefined) return m[1];
  const hi = parseInt(m[2] ?? '0', 16);
  const lo = parseInt(m[3] ?? '0', 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** A sentence for the refusal, naming the host, the address, its kind and the switch. */
export function refusalMessage(host: string, address: string, kind: Kind): string {
  const what = kind === 'metadata' ? 'the cloud metadata address' : kind === 'link-local' ? 'a link-local address' : kind === 'loopback' ? 'a loopback address' : kind === 'private' ? 'a private address' : 'a reserved address';
  const resolves = host === address ? `address ${address} is` : `host "${host}" resolves to ${address},`;
  return `external_url ${resolves} ${what}: refused before connecting (an operator can allow it with proxy.allow_private_upstreams)`;
}
