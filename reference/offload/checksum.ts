// RFC 1071 checksums of whole TCP/UDP packets for the TypeScript twins (README.md,
// "Checksums"): pseudo-headers of either family, validity, the L4 checksum written in full.
// The device leaves these to the native code.
import { fold, pseudoHeaderSum6, sumBytes } from '../../src/offload/checksum.js';

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/**
 * Sum of the IPv4 pseudo-header of the packet at buf[ip...]: src(4) dst(4) 0 proto L4len(u16).
 * Unfolded; l4Length must fit 16 bits.
 */
export function pseudoHeaderSum4(buf: Uint8Array, ip: number, proto: number, l4Length: number): number {
  return sumBytes(buf, ip + 12, ip + 20) + proto + l4Length;
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
