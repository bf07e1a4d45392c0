// TAI64N timestamps for handshake initiations (whitepaper §5.1). The low 24 bits of
// the nanoseconds are masked off, as wireguard-go does, so the timestamp does not
// reveal the sender's clock precisely.
import { TIMESTAMP_SIZE } from './constants.js';

const TAI64_EPOCH_OFFSET = 0x400000000000000an;
const NANOSECOND_WHITENING_MASK = 0xffffff;

export function tai64n(wallClockMs: number): Uint8Array {
  const out = new Uint8Array(TIMESTAMP_SIZE);
  const view = new DataView(out.buffer);
  const seconds = Math.floor(wallClockMs / 1000);
  const nanos = Math.round((wallClockMs - seconds * 1000) * 1e6);
  view.setBigUint64(0, TAI64_EPOCH_OFFSET + BigInt(seconds), false);
  view.setUint32(8, nanos & ~NANOSECOND_WHITENING_MASK, false);
  return out;
}

/** True when `a` is strictly later than `b` (both TAI64N, big-endian, so bytewise). Bounds: both lengths checked first. */
export function isAfter(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== TIMESTAMP_SIZE || b.length !== TIMESTAMP_SIZE) throw new RangeError(`timestamps have ${TIMESTAMP_SIZE} bytes, not ${a.length} and ${b.length}`);
  for (let i = 0; i < TIMESTAMP_SIZE; i++) {
    if (a[i] !== b[i]) return a[i]! > b[i]!;
  }
  return false;
}
