// The TUN GRO write probe (after Tailscale's): two TCP segments of one flow,
// coalesced into one super-packet with a vnet header, ready for one TUN write. Some
// stable kernels (6.1.103, 6.6.44, 6.10.x before 89add40066f9) refuse every such
// write with EINVAL. The packets have TTL 0 and 127.0.0.1 at both ends, so a kernel
// that takes the write drops them at once as martians: nothing leaves the host.
import { COALESCE_TCP } from '../offload/coalesce.js';
import { nativeCoalesce, nativeSplit } from '../offload/native.js';
import { VNET_GSO_TCPV4, VNET_HDR_LEN } from '../offload/vnet-header.js';

const FINGERPRINT = new TextEncoder().encode('tundra-gro-probe');
const SEGMENTS = 2;
const SLOT = 128;

export interface GroProbe {
  data: Uint8Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
}

/** One item (offsets[0], lengths[0]) holding the coalesced probe, header included. */
export function buildGroProbe(): GroProbe {
  const payload = FINGERPRINT.length;
  const ipLength = 20 + 20 + payload * SEGMENTS;
  // A super-packet as the kernel would hand it over; the split fills in the lengths and checksums.
  const superPacket = new Uint8Array(VNET_HDR_LEN + ipLength);
  const view = new DataView(superPacket.buffer);
  superPacket[1] = VNET_GSO_TCPV4;
  view.setUint16(2, 40, true); // hdr_len
  view.setUint16(4, payload, true); // gso_size
  view.setUint16(6, 20, true); // csum_start
  view.setUint16(8, 16, true); // csum_offset
  const ip = VNET_HDR_LEN;
  superPacket[ip] = 0x45;
  view.setUint16(ip + 2, ipLength);
  view.setUint16(ip + 6, 0x4000); // DF
  superPacket[ip + 8] = 0; // TTL 0
  superPacket[ip + 9] = 6; // TCP
  superPacket.set([127, 0, 0, 1, 127, 0, 0, 1], ip + 12);
  const tcp = ip + 20;
  view.setUint32(tcp + 4, 1); // seq
  superPacket[tcp + 12] = 5 << 4; // data offset
  superPacket[tcp + 13] = 0x10; // ACK
  view.setUint16(tcp + 14, 0xffff); // window
  for (let i = 0; i < SEGMENTS; i++) superPacket.set(FINGERPRINT, tcp + 20 + i * payload);

  const data = new Uint8Array(SLOT * SEGMENTS);
  const offsets = Uint32Array.from({ length: SEGMENTS }, (_, i) => i * SLOT + VNET_HDR_LEN);
  const lengths = new Uint32Array(SEGMENTS);
  const capacity = SLOT - VNET_HDR_LEN;
  if (nativeSplit(superPacket, data, offsets, lengths, SEGMENTS, capacity) !== SEGMENTS ||
      nativeCoalesce(data, offsets, lengths, SEGMENTS, capacity, COALESCE_TCP) !== 1) {
    throw new Error('gro-probe: the probe packets did not coalesce into one');
  }
  return { data, offsets, lengths };
}
