// The 10-byte legacy virtio_net_hdr that prefixes every TUN read and write once IFF_VNET_HDR is
// set (README.md, "virtio_net_hdr"): flags u8, gso_type u8, hdr_len u16, gso_size u16,
// csum_start u16, csum_offset u16 — the u16s little-endian (x86), unlike every packet header.

/** A header field: little-endian. Bounds: at + 2 ≤ buf.length, as readVnetHeader checks offset + VNET_HDR_LEN ≤ buf.length. */
const u16le = (buf: Uint8Array, at: number): number => buf[at]! | (buf[at + 1]! << 8);

export const VNET_HDR_LEN = 10;

/** flags: the L4 checksum field holds the pseudo-header sum; sum [csum_start, end) and store at csum_start+csum_offset. */
export const VNET_F_NEEDS_CSUM = 1;
/** flags: checksum already verified (ignored by tundra). */
export const VNET_F_DATA_VALID = 2;

export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
/** UFO: not supported (a split drops it as bad_gso_type). */
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
/** USO (UDP_L4, Linux 6.2+). */
export const VNET_GSO_UDP_L4 = 5;
/** Bit on gso_type: the segments carry ECN (CWR). Not supported by split. */
export const VNET_GSO_ECN = 0x80;

export interface VnetHeader {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** Reads the header at buf[offset, offset+10) into `out` (a fresh object if not given). Bounds: checked first. */
export function readVnetHeader(buf: Uint8Array, offset = 0, out?: VnetHeader): VnetHeader {
  if (offset < 0 || offset + VNET_HDR_LEN > buf.length) throw new RangeError('vnet header out of range');
  const h = out ?? { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
  h.flags = buf[offset]!;
  h.gsoType = buf[offset + 1]!;
  h.hdrLen = u16le(buf, offset + 2);
  h.gsoSize = u16le(buf, offset + 4);
  h.csumStart = u16le(buf, offset + 6);
  h.csumOffset = u16le(buf, offset + 8);
  return h;
}
