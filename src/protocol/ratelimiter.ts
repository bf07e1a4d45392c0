// Handshake rate limit per source IP while under load (wireguard-go ratelimiter):
// a token bucket of 20 handshakes per second with a burst of 5.

const PACKETS_PER_SECOND = 20;
const PACKETS_BURSTABLE = 5;
const COST = 1000 / PACKETS_PER_SECOND;
const MAX_TOKENS = COST * PACKETS_BURSTABLE;
/** Entries idle this long are full again and can be forgotten. */
const IDLE_AFTER = 1000;

interface Bucket {
  tokens: number;
  lastAt: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweepAt = 0;

  constructor(private readonly now: () => number) {}

  /** True when a handshake from `sourceIp` may be processed now. */
  allow(sourceIp: string): boolean {
    const now = this.now();
    this.sweep(now);
    const bucket = this.buckets.get(sourceIp);
    if (bucket === undefined) {
      this.buckets.set(sourceIp, { tokens: MAX_TOKENS - COST, lastAt: now });
      return true;
    }
    bucket.tokens = Math.min(MAX_TOKENS, bucket.tokens + (now - bucket.lastAt));
    bucket.lastAt = now;
    if (bucket.tokens < COST) return false;
    bucket.tokens -= COST;
    return true;
  }

  private sweep(now: number): void {
    if (now - this.lastSweepAt < IDLE_AFTER) return;
    this.lastSweepAt = now;
    for (const [ip, bucket] of this.buckets) {
      if (now - bucket.lastAt > IDLE_AFTER) this.buckets.delete(ip);
    }
  }
}
