import { BlockList, isIP } from 'node:net';

/**
 * Which upstream addresses an external service may reach. Pure.
 *
 * Refused unless the operator allows private upstreams: loopback, RFC 1918/4193 private ranges,
 * link-local (which holds the cloud metadata service 169.254.169.254), CGNAT, "this network",
 * multicast, reserved, documentation and discard ranges.
 *
 * IPv6 forms that carry an IPv4 address are decoded, so no private IPv4 hides inside one:
 * - judged by the IPv4 inside (a public one is allowed, as connecting to it reaches that IPv4):
 *   IPv4-mapped `::ffff:0:0/96` and the NAT64 well-known prefix `64:ff9b::/96`;
 * - refused whatever they carry (transition mechanisms an external API has no reason to use, which
 *   relays or tunnels would turn into IPv4 the check never saw), reported by the kind of the IPv4
 *   inside when that is not public: 6to4 `2002::/16` (and its relay anycast 192.88.99.0/24),
 *   Teredo `2001::/32` (server and obfuscated client IPv4), IPv4-compatible `::/96`,
 *   IPv4-translated `::ffff:0:0:0/96`, NAT64 local-use `64:ff9b:1::/48`.
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
  ['reserved', '192.88.99.0', 24, 'ipv4'],
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
  ['reserved', '100::', 64, 'ipv6'],
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
  if (family === 6) {
    const carried = carriedIpv4(address);
    if (carried !== undefined) {
      const inner = carried.ipv4 === undefined ? undefined : nonPublicKind(carried.ipv4);
      return carried.judge === 'inner' ? inner : (inner ?? 'reserved');
    }
  }
  if (METADATA.has(address.toLowerCase())) return 'metadata';
  for (const [kind, list] of lists) {
    if (list.check(address, family === 4 ? 'ipv4' : 'ipv6')) return kind;
  }
  return undefined;
}

/** The eight 16-bit groups of an IPv6 address (a trailing dotted IPv4 counts as two). */
export function ipv6Groups(address: string): number[] | undefined {
  let text = address.toLowerCase().split('%')[0] ?? '';
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string | undefined): number[] => (part === undefined || part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const head = parse(halves[0]);
  const tail = parse(halves[1]);
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array<number>(Math.max(0, fill)).fill(0), ...tail];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/**
 * The IPv4 address an IPv6 transition form carries, and whether the address is judged by it
 * (`inner`) or refused whatever it carries (`refuse`). Undefined for any other IPv6 address.
 */
function carriedIpv4(address: string): { ipv4: string | undefined; judge: 'inner' | 'refuse' } | undefined {
  const g = ipv6Groups(address);
  if (g === undefined) return undefined;
  const [g0, g1, g2, g3, g4, g5, g6, g7] = g as [number, number, number, number, number, number, number, number];
  const zeroTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroTo(5) && g5 === 0xffff) return { ipv4: v4(g6, g7), judge: 'inner' }; // ::ffff:a.b.c.d, mapped
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return { ipv4: v4(g6, g7), judge: 'inner' }; // NAT64 well-known
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 1) return { ipv4: undefined, judge: 'refuse' }; // NAT64 local-use /48
  if (zeroTo(4) && g4 === 0xffff && g5 === 0) return { ipv4: v4(g6, g7), judge: 'refuse' }; // ::ffff:0:a.b.c.d, translated
  if (zeroTo(6) && !(g6 === 0 && g7 <= 1)) return { ipv4: v4(g6, g7), judge: 'refuse' }; // ::a.b.c.d, compatible (not :: or ::1)
  if (g0 === 0x2002) return { ipv4: v4(g1, g2), judge: 'refuse' }; // 6to4
  if (g0 === 0x2001 && g1 === 0) {
    // Teredo: the server's IPv4 in groups 2-3, the client's (bits inverted) in 6-7; judge the client's.
    const client = v4(g6 ^ 0xffff, g7 ^ 0xffff);
    return { ipv4: nonPublicKind(client) !== undefined ? client : v4(g2, g3), judge: 'refuse' };
  }
  return undefined;
}

/** A sentence for the refusal, naming the host, the address, its kind and the switch. */
export function refusalMessage(host: string, address: string, kind: Kind): string {
  const what = kind === 'metadata' ? 'the cloud metadata address' : kind === 'link-local' ? 'a link-local address' : kind === 'loopback' ? 'a loopback address' : kind === 'private' ? 'a private address' : 'a reserved address';
  const resolves = host === address ? `address ${address} is` : `host "${host}" resolves to ${address},`;
  return `external_url ${resolves} ${what}: refused before connecting (an operator can allow it with proxy.allow_private_upstreams)`;
}
