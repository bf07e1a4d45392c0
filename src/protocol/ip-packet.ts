// The few facts about inner IP packets the tunnel needs, read (and the ECN field set)
// without allocating.
import { fold } from '../offload/checksum.js';

/**
 * Length of the IPv4 or IPv6 packet at buf[offset, offset+available) according to its
 * own header (so transport padding can be cut off), or -1 when it is no IP packet
 * or claims more bytes than there are.
 * Bounds: buf[offset, offset + available) lies in buf (the caller's: a decrypted packet inside its datagram, the batch
 * contract in docs/design.md §3); each read follows its available ≥ 1, 20 or 40 check.
 */
export function ipPacketLength(buf: Uint8Array, offset: number, available: number): number {
  if (available < 1) return -1;
  const version = buf[offset]! >> 4;
  let length: number;
  if (version === 4 && available >= 20) length = (buf[offset + 2]! << 8) | buf[offset + 3]!;
  else if (version === 6 && available >= 40) length = 40 + ((buf[offset + 4]! << 8) | buf[offset + 5]!);
  else return -1;
  return length <= available && length >= (version === 4 ? 20 : 40) ? length : -1;
}

/** ECN codepoints (RFC 3168): the low two bits of the IPv4 ToS and the IPv6 traffic class. */
export const ECN_NOT_ECT = 0;
export const ECN_ECT1 = 1;
export const ECN_ECT0 = 2;
export const ECN_CE = 3;

/**
 * The ECN field of the IPv4 or IPv6 packet at buf[offset]: the ToS byte's low bits, or
 * the traffic class's (the high nibble of its second byte).
 * Bounds: offset + 2 ≤ buf.length: the caller's packet holds at least an IP header.
 */
export function ipEcn(buf: Uint8Array, offset: number): number {
  const second = buf[offset + 1]!;
  return buf[offset]! >> 4 === 6 ? (second >> 4) & 3 : second & 3;
}

/**
 * RFC 6040's encapsulation (normal mode), as the kernel's WireGuard does it: the outer
 * header copies the inner ECN field, except that CE goes out as ECT(0), so that a mark
 * made before the tunnel is not seen as one made on its path.
 */
export function outerEcn(inner: number): number {
  return inner === ECN_CE ? ECN_ECT0 : inner;
}

/**
 * RFC 6040's decapsulation of an outer CE: sets CE on the IPv4 or IPv6 packet at
 * buf[offset] (an IPv4 header checksum updated incrementally, RFC 1624) and returns
 * true; false, leaving it untouched, for a Not-ECT packet, which must then be dropped.
 * Bounds: offset + 12 ≤ buf.length: the caller checked a whole IPv4 (20) or IPv6 (40) header.
 */
export function markCe(buf: Uint8Array, offset: number): boolean {
  const inner = ipEcn(buf, offset);
  if (inner === ECN_NOT_ECT) return false;
  if (inner === ECN_CE) return true;
  if (buf[offset]! >> 4 === 6) {
    buf[offset + 1] = buf[offset + 1]! | (ECN_CE << 4);
    return true;
  }
  const before = buf[offset + 1]!;
  buf[offset + 1] = before | ECN_CE;
  // Updated, not recomputed (as the kernel's IP_ECN_set_ce): a header that came with a
  // wrong checksum keeps it wrong. HC' = ~(~HC + ~m + m') over the 16-bit word holding
  // the ToS byte (its low byte; the high byte's ~b + b is the 0xff00).
  const check = ~fold((~((buf[offset + 10]! << 8) | buf[offset + 11]!) & 0xffff) + 0xff00 + (~before & 0xff) + (before | ECN_CE)) & 0xffff;
  buf[offset + 10] = check >> 8;
  buf[offset + 11] = check & 0xff;
  return true;
}
