// Why a received or outbound packet was dropped. Every decoder and check returns
// one of these codes instead of throwing, so counters can record them by name.

export const Drop = {
  TooShort: 1,
  WrongSize: 2,
  UnknownType: 3,
  ReservedNotZero: 4,
  BadMac1: 5,
  CookieSent: 6,
  RateLimited: 7,
  UnknownPeer: 8,
  HandshakeDecryptFailed: 9,
  StaleTimestamp: 10,
  InitiationFlood: 11,
  BadPublicKey: 12,
  UnknownIndex: 13,
  UnexpectedResponse: 14,
  CookieDecryptFailed: 15,
  KeypairExpired: 16,
  DecryptFailed: 17,
  Replay: 18,
  SourceNotAllowed: 19,
  NoPeerForDestination: 20,
  NotIp: 21,
  QueueFull: 22,
  NoEndpoint: 23,
  CounterExhausted: 24,
  SendFailed: 25,
  TunWriteFailed: 26,
  KeyTableFull: 27,
  WorkerBatchLost: 28,
  ControlRingFull: 29,
  RoutingLoop: 30,
  HandshakeQueueFull: 31,
  CookieRateLimited: 32,
  ControlRecordTooBig: 33,
  EcnCeNotEct: 34,
  QueueDelay: 35,
} as const;

export type DropReason = (typeof Drop)[keyof typeof Drop];

/** Counter label of each reason, e.g. for a prom-client `reason` label. */
export const DROP_REASON_NAMES: Readonly<Record<DropReason, string>> = {
  [Drop.TooShort]: 'too_short',
  [Drop.WrongSize]: 'wrong_size',
  [Drop.UnknownType]: 'unknown_type',
  [Drop.ReservedNotZero]: 'reserved_not_zero',
  [Drop.BadMac1]: 'bad_mac1',
  [Drop.CookieSent]: 'cookie_sent_under_load',
  [Drop.RateLimited]: 'rate_limited',
  [Drop.UnknownPeer]: 'unknown_peer',
  [Drop.HandshakeDecryptFailed]: 'handshake_decrypt_failed',
  [Drop.StaleTimestamp]: 'stale_timestamp',
  [Drop.InitiationFlood]: 'initiation_flood',
  [Drop.BadPublicKey]: 'bad_public_key',
  [Drop.UnknownIndex]: 'unknown_index',
  [Drop.UnexpectedResponse]: 'unexpected_response',
  [Drop.CookieDecryptFailed]: 'cookie_decrypt_failed',
  [Drop.KeypairExpired]: 'keypair_expired',
  [Drop.DecryptFailed]: 'decrypt_failed',
  [Drop.Replay]: 'replay',
  [Drop.SourceNotAllowed]: 'source_not_allowed',
  [Drop.NoPeerForDestination]: 'no_peer_for_destination',
  [Drop.NotIp]: 'not_ip',
  [Drop.QueueFull]: 'queue_full',
  [Drop.NoEndpoint]: 'no_endpoint',
  [Drop.CounterExhausted]: 'counter_exhausted',
  [Drop.SendFailed]: 'udp_send_failed',
  [Drop.TunWriteFailed]: 'tun_write_failed',
  [Drop.KeyTableFull]: 'key_table_full',
  [Drop.WorkerBatchLost]: 'worker_batch_lost',
  [Drop.ControlRingFull]: 'control_ring_full',
  [Drop.RoutingLoop]: 'routing_loop',
  [Drop.HandshakeQueueFull]: 'handshake_queue_full',
  [Drop.CookieRateLimited]: 'cookie_rate_limited',
  [Drop.ControlRecordTooBig]: 'control_record_too_big',
  [Drop.EcnCeNotEct]: 'ecn_ce_not_ect',
  [Drop.QueueDelay]: 'queue_delay',
};

/**
 * Which path counts each reason: inbound (UDP → TUN: what peers sent), outbound
 * (TUN → UDP, and the control plane's sends), or unknown (counted on both without
 * telling them apart). For the `direction` label of the drop metric.
 */
export type DropDirection = 'inbound' | 'outbound' | 'unknown';
const OUTBOUND_REASONS: ReadonlySet<DropReason> = new Set<DropReason>([
  Drop.NoPeerForDestination, Drop.QueueFull, Drop.NoEndpoint, Drop.CounterExhausted, Drop.SendFailed, Drop.KeyTableFull, Drop.RoutingLoop,
  Drop.ControlRecordTooBig,
]);
const UNKNOWN_REASONS: ReadonlySet<DropReason> = new Set<DropReason>([Drop.WorkerBatchLost, Drop.ControlRingFull]);

export function dropDirection(reason: DropReason): DropDirection {
  return OUTBOUND_REASONS.has(reason) ? 'outbound' : UNKNOWN_REASONS.has(reason) ? 'unknown' : 'inbound';
}

/** The direction of every reason by its label, engine's reasons only (see dropDirection). */
export const DROP_DIRECTIONS: Readonly<Record<string, DropDirection>> = Object.fromEntries(
  Object.entries(DROP_REASON_NAMES).map(([code, name]) => [name, dropDirection(Number(code) as DropReason)]),
);

/**
 * Counts drops by reason without allocating. The counts live in shared memory: a
 * worker counts into a buffer the main thread made (share()), and the main thread
 * sums every worker's with its own (sum()), also after a worker has died.
 */
export class DropCounters {
  readonly counts: Float64Array;

  constructor(buffer?: SharedArrayBuffer) {
    const size = Object.keys(DROP_REASON_NAMES).length + 1;
    this.counts = new Float64Array(buffer ?? new SharedArrayBuffer(8 * size));
    if (this.counts.length !== size) throw new RangeError(`drop counters need ${size} float64s, not ${this.counts.length}`);
  }

  // Bounds: a DropReason is a code of DROP_REASON_NAMES, below counts.length (constructor).
  add(reason: DropReason, n = 1): void {
    this.counts[reason]! += n;
  }

  // Bounds: as add().
  get(reason: DropReason): number {
    return this.counts[reason]!;
  }

  /** The buffer to hand a worker (new DropCounters(buffer) there). */
  share(): SharedArrayBuffer {
    return this.counts.buffer as SharedArrayBuffer;
  }

  /** Non-zero counts keyed by label. */
  snapshot(): Record<string, number> {
    return DropCounters.sum([this]);
  }

  /** Non-zero counts keyed by label, summed over several sets of counters. Bounds: each code < counts.length (constructor). */
  static sum(sets: readonly DropCounters[]): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [code, name] of Object.entries(DROP_REASON_NAMES)) {
      let n = 0;
      for (const set of sets) n += set.counts[Number(code)]!;
      if (n > 0) out[name] = n;
    }
    return out;
  }
}
