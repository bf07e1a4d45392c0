// RFC 1071 Internet checksums (README.md, "Checksums"), the parts the device uses: the ICMP
// errors it writes (protocol/icmp.ts), and the twins in reference/offload/ build on them.
//
// A sum here is the plain (unfolded) total of big-endian 16-bit words; a trailing odd byte
// counts as the high byte of a word. Sums of anything up to a 64 KiB packet stay far below
// 2^53, so they are exact in a double; fold() turns one into the 16-bit one's-complement sum.
// Nothing here allocates.

/**
 * `initial` plus the 16-bit big-endian words of buf[start, end), words counted from `start`.
 * Bounds: 0 ≤ start and end ≤ buf.length, checked first (once per call, not per byte).
 */
export function sumBytes(buf: Uint8Array, start: number, end: number, initial = 0): number {
  if (start < 0 || end > buf.length) throw new RangeError(`checksum over [${start}, ${end}) of a ${buf.length}-byte buffer`);
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
 * Sum of the IPv6 pseudo-header of the packet at buf[ip...]: src(16) dst(16) L4len(u32) 0 0 0 nexthdr.
 * Unfolded.
 */
export function pseudoHeaderSum6(buf: Uint8Array, ip: number, proto: number, l4Length: number): number {
  return sumBytes(buf, ip + 8, ip + 40) + Math.floor(l4Length / 0x10000) + (l4Length & 0xffff) + proto;
}

/**
 * Recomputes and stores the IPv4 header checksum (bytes 10..11) of the header at buf[ip...].
 * Bounds: ip < buf.length, as the caller wrote the header there (icmp.ts); sumBytes checks ip + ihl ≤ buf.length.
 */
export function writeIpv4HeaderChecksum(buf: Uint8Array, ip: number): void {
  const ihl = (buf[ip]! & 0x0f) * 4;
  buf[ip + 10] = 0;
  buf[ip + 11] = 0;
  const c = ~fold(sumBytes(buf, ip, ip + ihl)) & 0xffff;
  buf[ip + 10] = c >> 8;
  buf[ip + 11] = c & 0xff;
}
