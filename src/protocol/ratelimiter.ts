// Handshake rate limit per source while under load (wireguard-go's ratelimiter): a
// token bucket of 20 handshakes per second with a burst of 5, per IPv4 address and
// per IPv6 /64 (one host usually holds a whole /64: per address, it could take 2^64
// buckets' worth).
import { parseAddress } from '../routing/prefix.js';

export const PACKETS_PER_SECOND = 20;
export const PACKETS_BURSTABLE = 5;
const COST = 1000 / PACKETS_PER_SECOND;
const MAX_TOKENS = COST * PACKETS_BURSTABLE;
/** Entries idle this long are full again and can be forgotten. */
const IDLE_AFTER = 1000;

interface Bucket {
  tokens: number;
  lastAt: number;
}

/** The bucket's key: an IPv4 address, or an IPv6 address's /64 (the first four groups, in hex). */
function sourceKey(sourceIp: string): string {
  if (!sourceIp.includes(':')) return sourceIp;
  const bytes = parseAddress(sourceIp).address;
  return Buffer.from(bytes.buffer, bytes.byteOffset, 8).toString('hex');
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweepAt = 0;

  constructor(private readonly now: () => number) {}

  /** True when a handshake from `sourceIp` may be processed now. */
  allow(sourceIp: string): boolean {
    const now = this.now();
    this.sweep(now);
    const key = sourceKey(sourceIp);
    const bucket = this.buckets.get(key);
    if (bucket === undefined) {
      this.buckets.set(key, { tokens: MAX_TOKENS - COST, lastAt: now });
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
    for (const [key, bucket] of this.buckets) {
      if (now - bucket.lastAt > IDLE_AFTER) this.buckets.delete(key);
    }
  }
}
