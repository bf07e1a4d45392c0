// The offload counters of one device: what the native calls tally into their stats
// arrays (cumulative, never reset), the fallbacks the TypeScript side takes, and the
// socket receive-queue overflows the kernel reports, and the segments-per-read and
// per-write histograms.
import { rxqDropsSince, UDP_RECV_ASSIGNED, UDP_RECV_RXQ_OVERFLOW_RAW, UDP_RECV_STAT_NAMES, UDP_SEND_STAT_NAMES, udpRecvStats } from './udp-stats.js';
import { COALESCE_STAT_NAMES } from './coalesce.js';
import { isHistogramEntry, readHistograms, type HistogramValue } from './histogram.js';
import { OFFLOAD_STAT_NAMES } from './native.js';

/** Why an offload was turned off or a batch was sent another way. */
export type FallbackReason =
  | 'udp_gso_eio' // the egress device has no TX checksum offload: GSO off for that family
  | 'udp_gso_resent' // a GSO send refused (EMSGSIZE/EINVAL: path MTU below the segment size): resent one by one
  | 'tun_gro_einval' // the kernel refused a coalesced TUN write (6.1.103/6.6.44 regression): TUN GRO off
  | 'sticky_source_cleared'; // a datagram's source address (the one its peer sent to) is gone: resent from the routing table's choice

const DROP_PREFIX = 'drop_';
const CTRUNC = UDP_RECV_STAT_NAMES.indexOf('ctrunc_drops');

const FALLBACK_REASONS: readonly FallbackReason[] = ['udp_gso_eio', 'udp_gso_resent', 'tun_gro_einval', 'sticky_source_cleared'];

// Where each part lives in the shared buffer (Float64 elements).
const TUN_READ_AT = 0;
const COALESCE_AT = TUN_READ_AT + OFFLOAD_STAT_NAMES.length;
const UDP_SEND_AT = COALESCE_AT + COALESCE_STAT_NAMES.length;
const UDP_RECV_AT = UDP_SEND_AT + UDP_SEND_STAT_NAMES.length;
const FALLBACKS_AT = UDP_RECV_AT + UDP_RECV_STAT_NAMES.length;
const RXQ_OVERFLOWS = FALLBACKS_AT + FALLBACK_REASONS.length;
const RXQ_LAST = RXQ_OVERFLOWS + 1;
const ELEMENTS = RXQ_LAST + 1;

/**
 * The offload counters of one thread's ports, in shared memory like DropCounters:
 * a worker counts into a buffer the main thread made (share()), and the main thread
 * sums them all (sum()).
 */
export class OffloadCounters {
  private readonly all: Float64Array;
  /** tunReadVnet's stats, indexed as OFFLOAD_STAT_NAMES. */
  readonly tunRead: Float64Array;
  /** offloadCoalesce's stats, indexed as COALESCE_STAT_NAMES. */
  readonly coalesce: Float64Array;
  /** udpSend's stats, indexed as UDP_SEND_STAT_NAMES. */
  readonly udpSend: Float64Array;
  /** udpRecv's stats, indexed as UDP_RECV_STAT_NAMES; its raw overflow count is per socket. */
  readonly udpRecv: Float64Array;

  constructor(buffer?: SharedArrayBuffer) {
    const sab = buffer ?? new SharedArrayBuffer(8 * ELEMENTS);
    this.all = new Float64Array(sab, 0, ELEMENTS);
    this.tunRead = new Float64Array(sab, 8 * TUN_READ_AT, OFFLOAD_STAT_NAMES.length);
    this.coalesce = new Float64Array(sab, 8 * COALESCE_AT, COALESCE_STAT_NAMES.length);
    this.udpSend = new Float64Array(sab, 8 * UDP_SEND_AT, UDP_SEND_STAT_NAMES.length);
    this.udpRecv = new Float64Array(sab, 8 * UDP_RECV_AT, UDP_RECV_STAT_NAMES.length);
    if (buffer === undefined) {
      this.udpRecv.set(udpRecvStats());
      this.all[RXQ_LAST] = -1;
    }
  }

  /** The buffer to hand a worker (new OffloadCounters(buffer) there). */
  share(): SharedArrayBuffer {
    return this.all.buffer as SharedArrayBuffer;
  }

  // Bounds: indexOf a FallbackReason is ≥ 0 and < FALLBACK_REASONS.length, inside the layout (ELEMENTS, constructor).
  fallback(reason: FallbackReason, n = 1): void {
    this.all[FALLBACKS_AT + FALLBACK_REASONS.indexOf(reason)]! += n;
  }

  /** A new UDP socket: the kernel's SO_RXQ_OVFL count starts again at 0. */
  newSocket(): void {
    this.udpRecv[UDP_RECV_RXQ_OVERFLOW_RAW] = -1;
    this.all[RXQ_LAST] = -1;
  }

  /** Folds the latest SO_RXQ_OVFL value in (a wrapping u32 count since the socket was made). Bounds: every index is a layout constant + i below ELEMENTS, and each array holds ELEMENTS float64s (constructor: new Float64Array(sab, 0, ELEMENTS) throws when the buffer is short). */
  noteReceive(): void {
    const raw = this.udpRecv[UDP_RECV_RXQ_OVERFLOW_RAW]!;
    const last = this.all[RXQ_LAST]!;
    if (raw === last) return;
    this.all[RXQ_OVERFLOWS]! += rxqDropsSince(last, raw);
    this.all[RXQ_LAST] = raw;
  }

  /** Packets dropped on the offload paths, by reason (joined to the device's drop counters). */
  drops(): Record<string, number> {
    return OffloadCounters.sum([this]).drops;
  }

  /** Every counter by name (packets per write or send is the ratio of a pair), and the fallbacks. */
  snapshot(): Record<string, number | Record<string, number>> {
    return OffloadCounters.sum([this]).counters;
  }

  /** drops() and snapshot() summed over several threads' counters. Bounds: every index is a layout constant + i below ELEMENTS, and each array holds ELEMENTS float64s (constructor: new Float64Array(sab, 0, ELEMENTS) throws when the buffer is short). */
  static sum(sets: readonly OffloadCounters[]): {
    drops: Record<string, number>;
    counters: Record<string, number | Record<string, number>>;
    histograms: Record<string, HistogramValue>;
  } {
    const total = new Float64Array(ELEMENTS);
    for (const set of sets) for (let i = 0; i < ELEMENTS; i++) if (i !== RXQ_LAST) total[i]! += set.all[i]!;
    const drops: Record<string, number> = {};
    for (const [i, name] of OFFLOAD_STAT_NAMES.entries()) {
      if (name.startsWith(DROP_PREFIX) && total[TUN_READ_AT + i]! > 0) drops[name.slice(DROP_PREFIX.length)] = total[TUN_READ_AT + i]!;
    }
    if (total[UDP_RECV_AT + CTRUNC]! > 0) drops.udp_control_truncated = total[UDP_RECV_AT + CTRUNC]!;
    const counters: Record<string, number | Record<string, number>> = {};
    // Bounds: at + i stays inside the block of `names` in the layout, below ELEMENTS, total's length.
    const put = (names: readonly string[], at: number): void => {
      for (const [i, name] of names.entries()) {
        if (!name.startsWith(DROP_PREFIX) && !isHistogramEntry(name) && !UDP_RECV_ASSIGNED.has(name) && name !== 'ctrunc_drops') {
          counters[name] = total[at + i]!;
        }
      }
    };
    put(OFFLOAD_STAT_NAMES, TUN_READ_AT);
    put(COALESCE_STAT_NAMES, COALESCE_AT);
    put(UDP_SEND_STAT_NAMES, UDP_SEND_AT);
    put(UDP_RECV_STAT_NAMES, UDP_RECV_AT);
    counters.udp_rxq_overflows = total[RXQ_OVERFLOWS]!;
    const fallbacks: Record<string, number> = {};
    for (const [i, reason] of FALLBACK_REASONS.entries()) {
      if (total[FALLBACKS_AT + i]! > 0) fallbacks[reason] = total[FALLBACKS_AT + i]!;
    }
    counters.fallbacks = fallbacks;
    const histograms = {
      ...readHistograms(OFFLOAD_STAT_NAMES, total, TUN_READ_AT), ...readHistograms(COALESCE_STAT_NAMES, total, COALESCE_AT),
      ...readHistograms(UDP_SEND_STAT_NAMES, total, UDP_SEND_AT), ...readHistograms(UDP_RECV_STAT_NAMES, total, UDP_RECV_AT),
    };
    return { drops, counters, histograms };
  }
}
