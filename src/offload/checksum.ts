// RFC 1071 Internet checksums for the segmentation offloads (README.md, "Checksums").
//
// A sum here is the plain (unfolded) total of big-endian 16-bit words; a trailing odd byte
// counts as the high byte of a word. Sums of anything up to a 64 KiB packet stay far below
// 2^53, so they are exact in a double; fold() turns one into the 16-bit one's-complement sum.
// Nothing here allocates.

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** `initial` plus the 16-bit big-endian words of buf[start, end), words counted from `start`. */
export function sumBytes(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  return sum;
}

/** The one's-complement fold of a sum to 16 bits (end-around carry). Nonzero sums never fold to 0. */
export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * Sum of the IPv4 pseudo-header of the packet at buf[ip...]: src(4) dst(4) 0 proto L4len(u16).
 * Unfolded; l4Length must fit 16 bits.
 */
export function pseudoHeaderSum4(buf: Uint8Array, ip: number, proto: number, l4Length: number): number {
  return sumBytes(buf, ip + 12, ip + 20) + proto + l4Length;
}

/**
 * Sum of the IPv6 pseudo-header of the packet at buf[ip...]: src(16) dst(16) L4len(u32) 0 0 0 nexthdr.
 * Unfolded.
 */
export function pseudoHeaderSum6(buf: Uint8Array, ip: number, proto: number, l4Length: number): number {
  return sumBytes(buf, ip + 8, ip + 40) + Math.floor(l4Length / 0x10000) + (l4Length & 0xffff) + proto;
}

/** Pseudo-header sum for either family: version 4 or 6 taken from the packet's first nibble. */
export function pseudoHeaderSum(buf: Uint8Array, ip: number, proto: number, l4Length: number): number {
  return buf[ip]! >> 4 === 4
    ? pseudoHeaderSum4(buf, ip, proto, l4Length)
    : pseudoHeaderSum6(buf, ip, proto, l4Length);
}

/** True if the IPv4 header at buf[ip...] (IHL*4 bytes) folds to 0xFFFF. Needs IHL*4 bytes present. */
export function ipv4HeaderValid(buf: Uint8Array, ip: number): boolean {
  const ihl = (buf[ip]! & 0x0f) * 4;
  return fold(sumBytes(buf, ip, ip + ihl)) === 0xffff;
}

/** Recomputes and stores the IPv4 header checksum (bytes 10..11) of the header at buf[ip...]. */
export function writeIpv4HeaderChecksum(buf: Uint8Array, ip: number): void {
  const ihl = (buf[ip]! & 0x0f) * 4;
  buf[ip + 10] = 0;
  buf[ip + 11] = 0;
  const c = ~fold(sumBytes(buf, ip, ip + ihl)) & 0xffff;
  buf[ip + 10] = c >> 8;
  buf[ip + 11] = c & 0xff;
}

/**
 * True if the L4 segment buf[l4, end) of the IP packet at buf[ip...] is valid: the folded sum over
 * the pseudo-header (L4 length = end - l4) and the segment, checksum field included, is 0xFFFF.
 */
export function l4ChecksumValid(buf: Uint8Array, ip: number, l4: number, end: number, proto: number): boolean {
  return fold(sumBytes(buf, l4, end, pseudoHeaderSum(buf, ip, proto, end - l4))) === 0xffff;
}

/**
 * Computes the full L4 checksum of buf[l4, end) (field at l4 + csumOffset zeroed first) and stores it
 * complemented. UDP (proto 17) stores a result of 0 as 0xFFFF; TCP keeps 0. Returns the stored value.
 */
export function writeL4Checksum(buf: Uint8Array, ip: number, l4: number, end: number, proto: number): number {
  const field = l4 + (proto === IPPROTO_TCP ? 16 : 6);
  buf[field] = 0;
  buf[field + 1] = 0;
  let c = ~fold(sumBytes(buf, l4, end, pseudoHeaderSum(buf, ip, proto, end - l4))) & 0xffff;
  if (c === 0 && proto === IPPROTO_UDP) c = 0xffff;
  buf[field] = c >> 8;
  buf[field + 1] = c & 0xff;
  return c;
}

/** IPv4 header valid (v4 only) and L4 checksum valid, for a bare packet buf[ip, ip+length). */
export function packetChecksumsValid(buf: Uint8Array, ip: number, length: number, proto: number): boolean {
  const v4 = buf[ip]! >> 4 === 4;
  const iphlen = v4 ? (buf[ip]! & 0x0f) * 4 : 40;
  if (v4 && !ipv4HeaderValid(buf, ip)) return false;
  return l4ChecksumValid(buf, ip, ip + iphlen, ip + length, proto);
}
