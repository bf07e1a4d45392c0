// The offload counters of one device: what the native calls tally into their stats
// arrays (cumulative, never reset), the fallbacks the TypeScript side takes, and the
// socket receive-queue overflows the kernel reports. Ready for the metrics issue.
import { rxqDropsSince, UDP_RECV_RXQ_OVERFLOW_RAW, UDP_RECV_STAT_NAMES, UDP_SEND_STAT_NAMES, udpRecvStats } from '../io/udp.js';
import { COALESCE_STAT_NAMES } from './coalesce.js';
import { OFFLOAD_STAT_NAMES } from './native.js';

/** Why an offload was turned off or a batch was sent another way. */
export type FallbackReason =
  | 'udp_gso_eio' // the egress device has no TX checksum offload: GSO off for that family
  | 'udp_gso_resent' // a GSO send refused (EMSGSIZE/EINVAL: path MTU below the segment size): resent one by one
  | 'tun_gro_einval'; // the kernel refused a coalesced TUN write (6.1.103/6.6.44 regression): TUN GRO off

const DROP_PREFIX = 'drop_';
const CTRUNC = UDP_RECV_STAT_NAMES.indexOf('ctrunc_drops');

export class OffloadCounters {
  /** tunReadVnet's stats, indexed as OFFLOAD_STAT_NAMES. */
  readonly tunRead = new Float64Array(OFFLOAD_STAT_NAMES.length);
  /** offloadCoalesce's stats, indexed as COALESCE_STAT_NAMES. */
  readonly coalesce = new Float64Array(COALESCE_STAT_NAMES.length);
  /** udpSend's stats, indexed as UDP_SEND_STAT_NAMES. */
  readonly udpSend = new Float64Array(UDP_SEND_STAT_NAMES.length);
  /** udpRecv's stats, indexed as UDP_RECV_STAT_NAMES; its raw overflow count is per socket. */
  readonly udpRecv = udpRecvStats();
  private readonly fallbacks = new Map<FallbackReason, number>();
  private rxqOverflows = 0;
  private rxqLast = -1;

  fallback(reason: FallbackReason, n = 1): void {
    this.fallbacks.set(reason, (this.fallbacks.get(reason) ?? 0) + n);
  }

  /** A new UDP socket: the kernel's SO_RXQ_OVFL count starts again at 0. */
  newSocket(): void {
    this.udpRecv[UDP_RECV_RXQ_OVERFLOW_RAW] = -1;
    this.rxqLast = -1;
  }

  /** Folds the latest SO_RXQ_OVFL value in (a wrapping u32 count since the socket was made). */
  noteReceive(): void {
    const raw = this.udpRecv[UDP_RECV_RXQ_OVERFLOW_RAW]!;
    if (raw === this.rxqLast) return;
    this.rxqOverflows += rxqDropsSince(this.rxqLast, raw);
    this.rxqLast = raw;
  }

  /** Packets dropped on the offload paths, by reason (joined to the device's drop counters). */
  drops(): Record<string, number> {
    const out: Record<string, number> = {};
    OFFLOAD_STAT_NAMES.forEach((name, i) => {
      if (name.startsWith(DROP_PREFIX) && this.tunRead[i]! > 0) out[name.slice(DROP_PREFIX.length)] = this.tunRead[i]!;
    });
    if (this.udpRecv[CTRUNC]! > 0) out.udp_control_truncated = this.udpRecv[CTRUNC]!;
    return out;
  }

  /** Every counter by name (packets per write or send is the ratio of a pair), and the fallbacks. */
  snapshot(): Record<string, number | Record<string, number>> {
    const out: Record<string, number | Record<string, number>> = {};
    const put = (names: readonly string[], values: Float64Array): void => {
      names.forEach((name, i) => {
        if (!name.startsWith(DROP_PREFIX) && name !== 'rxq_overflow_raw' && name !== 'ctrunc_drops') out[name] = values[i]!;
      });
    };
    put(OFFLOAD_STAT_NAMES, this.tunRead);
    put(COALESCE_STAT_NAMES, this.coalesce);
    put(UDP_SEND_STAT_NAMES, this.udpSend);
    put(UDP_RECV_STAT_NAMES, this.udpRecv);
    out.udp_rxq_overflows = this.rxqOverflows;
    out.fallbacks = Object.fromEntries(this.fallbacks);
    return out;
  }
}
