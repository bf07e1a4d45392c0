// The few facts about inner IP packets the tunnel needs, read without allocating.

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
