// The counters the native UDP calls keep (native/udp.cc): GSO sends and GRO receives,
// their segments-per-message histograms, MSG_CTRUNC drops and the kernel's receive-queue
// overflow count. conn/udp.ts checks these layouts against the addon at load.
import { histogramNames } from './histogram.js';

/**
 * udpSend's `stats`, by index: [0] messages sent with UDP_SEGMENT, [1] datagrams in
 * them, then a histogram of datagrams per message sent (src/offload/histogram.ts).
 */
export const UDP_SEND_STAT_NAMES = ['gso_sends', 'gso_datagrams', ...histogramNames('udp_send_segments')] as const;
/**
 * udpRecv's `stats`, by index: [0] messages carrying > 1 datagram (GRO), [1] the
 * datagrams in them, [2] messages dropped for MSG_CTRUNC, [3] the last SO_RXQ_OVFL
 * value seen: the kernel's running u32 count of datagrams this socket dropped for a
 * full receive queue, -1 until one was seen (see {@link rxqDropsSince}); [4] and [5] how
 * long the newest and the oldest datagram the last call took from the kernel had waited
 * in the socket's receive queue, in ns (SO_TIMESTAMPNS; -1 when that call took none).
 * [0]–[2] are incremented, [3]–[5] assigned. Then a histogram of datagrams per message received.
 */
export const UDP_RECV_STAT_NAMES = [
  'gro_receives', 'gro_datagrams', 'ctrunc_drops', 'rxq_overflow_raw', 'sojourn_newest_ns', 'sojourn_oldest_ns', ...histogramNames('udp_recv_segments'),
] as const;
export const UDP_RECV_RXQ_OVERFLOW_RAW = 3;
export const UDP_RECV_SOJOURN_NEWEST_NS = 4;
export const UDP_RECV_SOJOURN_OLDEST_NS = 5;
/** The stats a call assigns rather than counts: not summed into counters. */
export const UDP_RECV_ASSIGNED: ReadonlySet<string> = new Set(['rxq_overflow_raw', 'sojourn_newest_ns', 'sojourn_oldest_ns']);

/** A zeroed stats array for udpSend. */
export function udpSendStats(): Float64Array {
  return new Float64Array(UDP_SEND_STAT_NAMES.length);
}

/** A stats array for udpRecv: counters 0, the assigned values -1 (none seen yet). */
export function udpRecvStats(): Float64Array {
  const s = new Float64Array(UDP_RECV_STAT_NAMES.length);
  s[UDP_RECV_RXQ_OVERFLOW_RAW] = -1;
  s[UDP_RECV_SOJOURN_NEWEST_NS] = -1;
  s[UDP_RECV_SOJOURN_OLDEST_NS] = -1;
  return s;
}

/**
 * Datagrams dropped between two readings of stats[rxq_overflow_raw] (a wrapping u32
 * from the kernel; -1 = none seen, which counts as 0 drops so far).
 */
export function rxqDropsSince(previousRaw: number, currentRaw: number): number {
  if (currentRaw < 0) return 0;
  const before = previousRaw < 0 ? 0 : previousRaw;
  return (currentRaw - before + 0x1_0000_0000) % 0x1_0000_0000;
}
