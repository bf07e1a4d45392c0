// Why a received or outbound packet was dropped. Every decoder and check returns
// one of these codes instead of throwing, so counters can record them by name.

export const Drop = {
  TooShort: 1,
  WrongSize: 2,
  UnknownType: 3,
  ReservedNotZero: 4,
  BadMac1: 5,
  BadMac2: 6,
  CookieSent: 7,
  RateLimited: 8,
  UnknownPeer: 9,
  HandshakeDecryptFailed: 10,
  StaleTimestamp: 11,
  InitiationFlood: 12,
  BadPublicKey: 13,
  UnknownIndex: 14,
  UnexpectedResponse: 15,
  CookieDecryptFailed: 16,
  NoKeypair: 17,
  KeypairExpired: 18,
  DecryptFailed: 19,
  Replay: 20,
  SourceNotAllowed: 21,
  NoPeerForDestination: 22,
  NotIp: 23,
  QueueFull: 24,
  NoEndpoint: 25,
  CounterExhausted: 26,
  SendFailed: 27,
  TunWriteFailed: 28,
} as const;

export type DropReason = (typeof Drop)[keyof typeof Drop];

/** Counter label of each reason, e.g. for a prom-client `reason` label. */
export const DROP_REASON_NAMES: Readonly<Record<DropReason, string>> = {
  [Drop.TooShort]: 'too_short',
  [Drop.WrongSize]: 'wrong_size',
  [Drop.UnknownType]: 'unknown_type',
  [Drop.ReservedNotZero]: 'reserved_not_zero',
  [Drop.BadMac1]: 'bad_mac1',
  [Drop.BadMac2]: 'bad_mac2',
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
  [Drop.NoKeypair]: 'no_keypair',
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
