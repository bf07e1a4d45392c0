// The write side's contract (README.md, "COALESCE"): the flags of a coalesce and the
// layout of its stats, shared by the native offloadCoalesce, the TUN port and the
// counters. The TypeScript twin that the tests hold the native code to is
// reference/offload/coalesce.ts.
import { histogramNames } from './histogram.js';

/** flags bit: merge TCP segments (TCP GRO). */
export const COALESCE_TCP = 1;
/** flags bit: merge UDP datagrams (UDP GRO; needs USO on the TUN). */
export const COALESCE_UDP = 2;
/**
 * flags bit: the packets' checksums are known good, so they are not verified before a
 * merge: what the inbound stage opened came from an authenticated peer, whose packets
 * the kernel's WireGuard marks CHECKSUM_UNNECESSARY. Saves a pass over every byte.
 */
export const COALESCE_TRUSTED = 4;

/** stats index: items written with more than one segment. */
export const COALESCE_STAT_ITEMS = 0;
/** stats index: packets inside those items. */
export const COALESCE_STAT_PACKETS = 1;
/** stats index: packets found with a bad checksum while verifying before a first merge (never with COALESCE_TRUSTED). */
export const COALESCE_STAT_BAD_CHECKSUM = 2;
/** stats index: then a histogram of packets per written item (histogram.ts). */
export const COALESCE_STAT_HISTOGRAM = 3;
export const COALESCE_STAT_NAMES = [
  'coalesced_items', 'coalesced_packets', 'bad_checksum',
  ...histogramNames('tun_write_segments'),
] as const;
