// Typed wrappers over the addon's offload functions (native/offload.cc): GSO split of
// one TUN read and GRO coalesce of a TUN write batch, with the semantics of
// src/offload/README.md (the TypeScript twins in reference/offload/ are the oracle these
// are tested against, byte for byte).
//
// The functions are the native functions themselves. Their argument checks run in C++
// once per call, before anything is read or written:
// - a wrong type (data not a Uint8Array, offsets not a Uint32Array, stats not a
//   Float64Array, a number that is not a number) throws a TypeError;
// - a value out of range (a non-integer or negative count, maxSegments < 1, count
//   beyond offsets/lengths or above COALESCE_MAX_PACKETS, a slot reaching past `data`,
//   a coalesce offset below VNET_HDR_LEN, unknown flag bits, a short stats array)
//   throws a RangeError, and nothing was touched.
// Descriptor arrays may live in a SharedArrayBuffer: each entry is read once and
// re-checked where it is used, so nothing outside a slot is ever read or written,
// whatever the packet bytes or another thread do.
import { expectNativeConstants, nativeFunction, nativeNames, nativeNumber } from '../native/addon.js';
import { COALESCE_STAT_NAMES, COALESCE_TCP, COALESCE_TRUSTED, COALESCE_UDP } from './coalesce.js';
import { SPLIT_DROP_NAMES } from './split.js';
import * as vnet from './vnet-header.js';

// The constants are written down in vnet-header.ts, split.ts and coalesce.ts; a native
// side that disagrees would misread every header or counter, so fail at load instead.
expectNativeConstants([
  ['VNET_HDR_LEN', vnet.VNET_HDR_LEN], ['VNET_F_NEEDS_CSUM', vnet.VNET_F_NEEDS_CSUM], ['VNET_F_DATA_VALID', vnet.VNET_F_DATA_VALID],
  ['VNET_GSO_NONE', vnet.VNET_GSO_NONE], ['VNET_GSO_TCPV4', vnet.VNET_GSO_TCPV4], ['VNET_GSO_UDP', vnet.VNET_GSO_UDP],
  ['VNET_GSO_TCPV6', vnet.VNET_GSO_TCPV6], ['VNET_GSO_UDP_L4', vnet.VNET_GSO_UDP_L4], ['VNET_GSO_ECN', vnet.VNET_GSO_ECN],
  ['COALESCE_TCP', COALESCE_TCP], ['COALESCE_UDP', COALESCE_UDP], ['COALESCE_TRUSTED', COALESCE_TRUSTED],
  ['SPLIT_DROP_NAMES', SPLIT_DROP_NAMES], ['COALESCE_STAT_NAMES', COALESCE_STAT_NAMES],
]);

/** Most packets one nativeCoalesce call takes (its flow tables are fixed-size). */
export const COALESCE_MAX_PACKETS: number = nativeNumber('COALESCE_MAX_PACKETS');

/**
 * Names of the tunReadVnet stats (Float64Array indices, in order): tun_packets_read,
 * tun_super_packets, tun_segments, tun_checksums_completed, then drop_<name> for each of
 * SPLIT_DROP_NAMES (drop code -c counts at index 3 + c).
 */
export const OFFLOAD_STAT_NAMES: readonly string[] = nativeNames('OFFLOAD_STAT_NAMES');

/**
 * Splits one TUN read, `input` = virtio_net_hdr + packet, into ordinary IP packets:
 * segment j goes to `data[offsets[j], offsets[j] + capacity)` and its length to
 * `lengths[j]`, j < maxSegments. Returns the segment count (>= 1), or a negative drop
 * code -c named by SPLIT_DROP_NAMES[c - 1] (slots may then hold garbage).
 *
 * gso_type NONE: the packet is copied as is (with NEEDS_CSUM its checksum is completed).
 * TCPV4/TCPV6/UDP_L4: cut at gso_size payload bytes; each segment gets its own IP
 * length/ID/header checksum, TCP sequence number and flags (FIN/PSH only on the last,
 * CWR only on the first) or UDP length, and a full L4 checksum. The kernel's hdr_len is
 * never trusted. maxSegments must be in [1, min(offsets.length, lengths.length)] and
 * every one of those slots inside `data` (RangeError otherwise).
 */
export type NativeSplit = (
  input: Uint8Array,
  data: Uint8Array,
  offsets: Uint32Array,
  lengths: Uint32Array,
  maxSegments: number,
  capacity: number,
) => number;

/**
 * Coalesces a write batch for an IFF_VNET_HDR TUN. Packet i is
 * `data[offsets[i], offsets[i] + lengths[i])`, with at least VNET_HDR_LEN writable bytes
 * before it and a slot of `capacity` bytes from offsets[i]. Returns the number of items;
 * item k (k < return value) is written back as `offsets[k]` (pointing at its vnet header)
 * and `lengths[k]` (header included), in the order the items were created, ready for
 * tunWrite. Merged items (TCP with `flags & COALESCE_TCP`, UDP with `flags &
 * COALESCE_UDP`) carry a NEEDS_CSUM + GSO header and the pseudo-header sum in the L4
 * checksum field; every other packet is untouched behind an all-zero header.
 * `stats`, if given (>= COALESCE_STAT_NAMES.length entries), is incremented at the COALESCE_STAT_NAMES indices.
 * count is at most COALESCE_MAX_PACKETS.
 */
export type NativeCoalesce = (
  data: Uint8Array,
  offsets: Uint32Array,
  lengths: Uint32Array,
  count: number,
  capacity: number,
  flags: number,
  stats?: Float64Array,
) => number;

/** See {@link NativeSplit}. */
export const nativeSplit: NativeSplit = nativeFunction('offloadSplit');
/** See {@link NativeCoalesce}. */
export const nativeCoalesce: NativeCoalesce = nativeFunction('offloadCoalesce');
