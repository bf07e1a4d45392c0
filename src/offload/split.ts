// The read side's contract (README.md, "SPLIT"): the drop codes of a split, which the
// native offloadSplit returns, the TUN read counts and the metrics name. The TypeScript
// twin that the tests hold the native code to is reference/offload/split.ts.

/** Names of the drop codes: SPLIT_DROP_NAMES[c - 1] names the return value -c. */
export const SPLIT_DROP_NAMES = [
  'vnet_header_truncated',
  'bad_gso_type',
  'gso_ip_mismatch',
  'truncated_header',
  'bad_csum_start',
  'bad_gso_size',
  'too_many_segments',
  'packet_too_large',
] as const;

export type SplitDropName = (typeof SPLIT_DROP_NAMES)[number];

/** input.length < 10, or nothing after the header. */
export const SPLIT_VNET_HEADER_TRUNCATED = -1;
/** gso_type not NONE, TCPV4, TCPV6 or UDP_L4 (UFO and the ECN bit included). */
export const SPLIT_BAD_GSO_TYPE = -2;
/** IP version not 4/6, TCPV4/TCPV6 on the other family, or the IP protocol is not the GSO type's. */
export const SPLIT_GSO_IP_MISMATCH = -3;
/** Shorter than the IP header or the L4 header. */
export const SPLIT_TRUNCATED_HEADER = -4;
/** GSO: csum_start is not the IP header length. NONE+NEEDS_CSUM: the checksum field is past the end. */
export const SPLIT_BAD_CSUM_START = -5;
/** GSO: gso_size 0 or larger than the payload, or no payload. */
export const SPLIT_BAD_GSO_SIZE = -6;
/** More segments than maxSegments. */
export const SPLIT_TOO_MANY_SEGMENTS = -7;
/** A segment (or the NONE packet) does not fit `capacity`. */
export const SPLIT_PACKET_TOO_LARGE = -8;
