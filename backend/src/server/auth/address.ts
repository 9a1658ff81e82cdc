/**
 * The client address that login throttling is keyed on. Without `trustProxy` it is the socket's peer.
 * With `trustProxy` it is the address the nearest reverse proxy appended to X-Forwarded-For (its
 * right-most entry; one trusted hop), never the left-most entry, which the client writes. An IPv6
 * address is reduced to its /64 (one subscriber usually holds a whole /64), an IPv4-mapped IPv6
 * address to its IPv4 address; anything else (a malformed forwarded entry) shares one bucket.
 */
import type { FastifyRequest } from 'fastify';
import { isIP } from 'node:net';

/** The throttling bucket of one address: `a.b.c.d`, `h:h:h:h::/64` or `other`. */
export function addressBucket(address: string): string {
  const bare = address.trim().split('%')[0] ?? '';
  const mapped = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i.exec(bare);
  if (mapped?.[1] !== undefined && isIP(mapped[1]) === 4) return mapped[1];
  const family = isIP(bare);
  if (family === 4) return bare;
  if (family !== 6) return 'other';
  const groups = expandIpv6(bare);
  return groups === undefined ? 'other' : `${groups.slice(0, 4).join(':')}::/64`;
}

/** The eight groups of a valid IPv6 address (lower case, no leading zeros); an embedded IPv4 counts as two. */
function expandIpv6(address: string): string[] | undefined {
  const split = (part: string): string[] => {
    if (part === '') return [];
    const out: string[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) out.push('0', '0');
      else out.push(Number.parseInt(g, 16).toString(16));
    }
    return out;
  };
  const halves = address.toLowerCase().split('::');
  const head = split(halves[0] ?? '');
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const tail = split(halves[1] ?? '');
  const missing = 8 - head.length - tail.length;
  if (missing < 0) return undefined;
  return [...head, ...Array.from({ length: missing }, () => '0'), ...tail];
}

/** The login throttling bucket of a request (see the module comment). */
export function loginAddress(request: FastifyRequest, trustProxy: boolean): string {
  const peer = request.socket.remoteAddress ?? '';
  if (!trustProxy) return addressBucket(peer);
  // Fastify's `ips` with trustProxy: [peer, right-most forwarded, ..., left-most forwarded].
  const hop = request.ips?.[1];
  return addressBucket(hop ?? peer);
}
