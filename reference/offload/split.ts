// The read side of the TUN offloads in plain TypeScript: one packet from a TUN with IFF_VNET_HDR
// (a 10-byte virtio_net_hdr, then an IP packet that may be a TSO/USO super-packet) becomes one or
// more ordinary IP packets with valid checksums. README.md, "SPLIT", to the letter.
//
// This is the oracle the native offloadSplit (native/offload.cc) is tested against byte for byte;
// it favours clarity over speed, and only the tests and bench/micro load it: the device
// splits with the native code.

import { fold, sumBytes, writeIpv4HeaderChecksum } from '../../src/offload/checksum.js';
import {
  SPLIT_BAD_CSUM_START,
  SPLIT_BAD_GSO_SIZE,
  SPLIT_BAD_GSO_TYPE,
  SPLIT_DROP_NAMES,
  SPLIT_GSO_IP_MISMATCH,
  SPLIT_PACKET_TOO_LARGE,
  SPLIT_TOO_MANY_SEGMENTS,
  SPLIT_TRUNCATED_HEADER,
  SPLIT_VNET_HEADER_TRUNCATED,
  type SplitDropName,
} from '../../src/offload/split.js';
import {
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4,
  VNET_HDR_LEN,
  readVnetHeader,
} from '../../src/offload/vnet-header.js';
import { IPPROTO_TCP, IPPROTO_UDP, writeL4Checksum } from './checksum.js';
import { setU16be, setU32be, u16be, u32be } from './bytes.js';

/** The name of a negative split result, e.g. splitDropName(-4) === 'truncated_header'. */
export function splitDropName(code: number): SplitDropName {
  const name = SPLIT_DROP_NAMES[-code - 1];
  if (name === undefined) throw new RangeError(`not a split drop code: ${code}`);
  return name;
}

const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/**
 * Splits `input` (virtio_net_hdr + IP packet, as read from the TUN) into segments.
 *
 * Segment j goes to data[offsets[j], offsets[j] + capacity) with its length in lengths[j],
 * j < maxSegments. Returns the number of segments (>= 1) or a negative drop code (see
 * SPLIT_DROP_NAMES); on a drop the slots' contents are unspecified and lengths[] is untouched.
 * Throws a RangeError up front if maxSegments is not an integer >= 1 or exceeds offsets/lengths,
 * or a slot j < maxSegments reaches past `data`.
 *
 * - gso_type NONE: the packet is copied as is (not parsed); with NEEDS_CSUM the checksum over
 *   [csum_start, end) is completed at csum_start + csum_offset (0 becomes 0xFFFF).
 * - TCPV4/TCPV6/UDP_L4: cut into gso_size payload pieces behind a copy of the IP and L4 headers
 *   (the kernel's hdr_len is ignored); lengths, IPv4 ID and header checksum, TCP sequence numbers
 *   and FIN/PSH/CWR, UDP length and the L4 checksum are rewritten per segment.
 */
export function splitPacket(
  input: Uint8Array,
  data: Uint8Array,
  offsets: Uint32Array,
  lengths: Uint32Array,
  maxSegments: number,
  capacity: number,
): number {
  if (!Number.isInteger(maxSegments) || maxSegments < 1) throw new RangeError(`maxSegments ${maxSegments} is not >= 1`);
  if (maxSegments > offsets.length || maxSegments > lengths.length) {
    throw new RangeError(`maxSegments ${maxSegments} exceeds offsets/lengths`);
  }
  for (let j = 0; j < maxSegments; j++) {
    if (offsets[j]! + capacity > data.length) throw new RangeError(`slot ${j} reaches past data`);
  }

  // -1: the header and at least one packet byte.
  if (input.length <= VNET_HDR_LEN) return SPLIT_VNET_HEADER_TRUNCATED;
  const { flags, gsoType, gsoSize, csumStart, csumOffset } = readVnetHeader(input);
  const p = VNET_HDR_LEN; // the packet's first byte in input
  const len = input.length - VNET_HDR_LEN;

  // -2
  if (
    gsoType !== VNET_GSO_NONE &&
    gsoType !== VNET_GSO_TCPV4 &&
    gsoType !== VNET_GSO_TCPV6 &&
    gsoType !== VNET_GSO_UDP_L4
  ) {
    return SPLIT_BAD_GSO_TYPE;
  }

  if (gsoType === VNET_GSO_NONE) return splitNone(input, len, flags, csumStart, csumOffset, data, offsets, lengths, capacity);

  // -3: family and protocol. A packet too short to hold the protocol byte (v4 offset 9, v6
  // offset 6) has no TCP/UDP protocol either, so it fails here, before truncated_header.
  const version = input[p]! >> 4;
  if (version !== 4 && version !== 6) return SPLIT_GSO_IP_MISMATCH;
  if (gsoType === VNET_GSO_TCPV4 && version !== 4) return SPLIT_GSO_IP_MISMATCH;
  if (gsoType === VNET_GSO_TCPV6 && version !== 6) return SPLIT_GSO_IP_MISMATCH;
  const proto = gsoType === VNET_GSO_UDP_L4 ? IPPROTO_UDP : IPPROTO_TCP;
  const protoAt = version === 4 ? 9 : 6;
  if (len <= protoAt || input[p + protoAt] !== proto) return SPLIT_GSO_IP_MISMATCH;

  // -4: the IP header, then the L4 header.
  let iphlen: number;
  if (version === 4) {
    if (len < 20) return SPLIT_TRUNCATED_HEADER;
    iphlen = (input[p]! & 0x0f) * 4;
    if (iphlen < 20 || len < iphlen) return SPLIT_TRUNCATED_HEADER;
  } else {
    if (len < 40) return SPLIT_TRUNCATED_HEADER;
    iphlen = 40;
  }
  let l4hlen: number;
  if (proto === IPPROTO_TCP) {
    if (len < iphlen + 20) return SPLIT_TRUNCATED_HEADER;
    const doff = input[p + iphlen + 12]! >> 4;
    if (doff < 5 || len < iphlen + doff * 4) return SPLIT_TRUNCATED_HEADER;
    l4hlen = doff * 4;
  } else {
    if (len < iphlen + 8) return SPLIT_TRUNCATED_HEADER;
    l4hlen = 8;
  }

  // -5
  if (csumStart !== iphlen) return SPLIT_BAD_CSUM_START;

  // -6
  const hdrLen = iphlen + l4hlen;
  const payload = len - hdrLen;
  if (gsoSize === 0 || payload === 0 || gsoSize > payload) return SPLIT_BAD_GSO_SIZE;

  // -7
  const n = Math.ceil(payload / gsoSize);
  if (n > maxSegments) return SPLIT_TOO_MANY_SEGMENTS;

  // -8: the first segment (full gso_size) is the longest.
  if (hdrLen + gsoSize > capacity) return SPLIT_PACKET_TOO_LARGE;

  const id = version === 4 ? u16be(input, p + 4) : 0;
  const seq = proto === IPPROTO_TCP ? u32be(input, p + iphlen + 4) : 0;
  for (let i = 0; i < n; i++) {
    const at = offsets[i]!;
    const start = i * gsoSize;
    const segPayload = Math.min(gsoSize, payload - start);
    const segLen = hdrLen + segPayload;
    data.set(input.subarray(p, p + hdrLen), at);
    data.set(input.subarray(p + hdrLen + start, p + hdrLen + start + segPayload), at + hdrLen);

    if (version === 4) {
      setU16be(data, at + 2, segLen & 0xffff);
      setU16be(data, at + 4, (id + i) & 0xffff);
      writeIpv4HeaderChecksum(data, at);
    } else {
      setU16be(data, at + 4, (segLen - 40) & 0xffff);
    }

    const l4 = at + iphlen;
    if (proto === IPPROTO_TCP) {
      setU32be(data, l4 + 4, (seq + start) >>> 0);
      let tcpFlags = data[l4 + 13]!;
      if (i < n - 1) tcpFlags &= ~(TCP_FIN | TCP_PSH);
      if (i > 0) tcpFlags &= ~TCP_CWR;
      data[l4 + 13] = tcpFlags;
    } else {
      setU16be(data, l4 + 4, (segLen - iphlen) & 0xffff);
    }
    writeL4Checksum(data, at, l4, at + segLen, proto);
    lengths[i] = segLen;
  }
  return n;
}

function splitNone(
  input: Uint8Array,
  len: number,
  flags: number,
  csumStart: number,
  csumOffset: number,
  data: Uint8Array,
  offsets: Uint32Array,
  lengths: Uint32Array,
  capacity: number,
): number {
  const needsCsum = (flags & VNET_F_NEEDS_CSUM) !== 0;
  if (needsCsum && csumStart + csumOffset + 2 > len) return SPLIT_BAD_CSUM_START;
  if (len > capacity) return SPLIT_PACKET_TOO_LARGE;
  const at = offsets[0]!;
  data.set(input.subarray(VNET_HDR_LEN), at);
  if (needsCsum) {
    // The field already holds the pseudo-header sum and is part of the range summed.
    let c = ~fold(sumBytes(data, at + csumStart, at + len)) & 0xffff;
    if (c === 0) c = 0xffff;
    setU16be(data, at + csumStart + csumOffset, c);
  }
  lengths[0] = len;
  return 1;
}
