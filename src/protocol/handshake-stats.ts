// The control plane's handshake counters, for metrics: plain numbers, since every
// handshake is handled on the main thread.
import { DROP_REASON_NAMES, type DropReason } from './drop-reasons.js';

/** Upper bounds (seconds) of the handshake-duration buckets: from a LAN's round trip to a retried one. */
export const HANDSHAKE_DURATION_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

export class HandshakeStats {
  initiationsSent = 0;
  initiationsReceived = 0;
  responsesSent = 0;
  responsesReceived = 0;
  cookieRepliesSent = 0;
  cookieRepliesReceived = 0;
  /** Handshake messages refused, and attempts given up ('timeout'), by reason. */
  readonly failures = new Map<string, number>();
  /** Seconds from an attempt's first initiation to its response: counts per bucket (the last is +Inf), not cumulative. */
  readonly durationBuckets = new Float64Array(HANDSHAKE_DURATION_BOUNDS.length + 1);
  durationSum = 0;
  durationCount = 0;

  fail(reason: DropReason | 'timeout'): void {
    const name = reason === 'timeout' ? reason : DROP_REASON_NAMES[reason];
    this.failures.set(name, (this.failures.get(name) ?? 0) + 1);
  }

  // Bounds: b ≤ HANDSHAKE_DURATION_BOUNDS.length < durationBuckets.length; the loop reads bounds[b] only for b < its length.
  observeDuration(seconds: number): void {
    let b = 0;
    while (b < HANDSHAKE_DURATION_BOUNDS.length && seconds > HANDSHAKE_DURATION_BOUNDS[b]!) b++;
    this.durationBuckets[b]! += 1;
    this.durationSum += seconds;
    this.durationCount++;
  }
}
