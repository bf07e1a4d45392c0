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
};

/** Counts drops by reason without allocating; one per device (or per worker). */
export class DropCounters {
  readonly counts = new Float64Array(Object.keys(DROP_REASON_NAMES).length + 1);

  add(reason: DropReason, n = 1): void {
    this.counts[reason]! += n;
  }

  get(reason: DropReason): number {
    return this.counts[reason]!;
  }

  /** Non-zero counts keyed by label. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [code, name] of Object.entries(DROP_REASON_NAMES)) {
      const n = this.counts[Number(code)]!;
      if (n > 0) out[name] = n;
    }
    return out;
  }
}
