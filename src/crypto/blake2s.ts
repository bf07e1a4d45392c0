// BLAKE2s and the HMAC/HKDF built on it, as the Noise_IKpsk2 handshake and the
// MAC/cookie scheme use them (WireGuard whitepaper §5.4), in the addon
// (native/noise_crypto.cc): one call each, no Hash objects or Buffers on the way.
// Tests check every function against @noble/hashes.
import { nativeFunction } from '../native/addon.js';

type Blake2sFn = (out: Uint8Array, key: Uint8Array, ...parts: Uint8Array[]) => void;
type HkdfFn = (out: Uint8Array, key: Uint8Array, input: Uint8Array) => void;
const blake2s = nativeFunction<Blake2sFn>('blake2s');
const hmacBlake2s = nativeFunction<Blake2sFn>('hmacBlake2s');
const hkdfBlake2s = nativeFunction<HkdfFn>('hkdfBlake2s');

const NO_KEY = new Uint8Array(0);

/** HASH(a ‖ b ‖ …): 32-byte BLAKE2s (up to 8 parts). */
export function hash(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(32);
  blake2s(out, NO_KEY, ...parts);
  return out;
}

/** MAC(key, a ‖ b ‖ …): 16-byte keyed BLAKE2s. */
export function mac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(16);
  blake2s(out, key, ...parts);
  return out;
}

/** HMAC-BLAKE2s (32 bytes). */
export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(32);
  hmacBlake2s(out, key, ...parts);
  return out;
}

/** HKDF with HMAC-BLAKE2s, returning the first `n` 32-byte outputs (n = 1..3) as views of one array. */
export function kdf(n: 1, key: Uint8Array, input: Uint8Array): [Uint8Array];
export function kdf(n: 2, key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array];
export function kdf(n: 3, key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array];
export function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const out = new Uint8Array(32 * n);
  hkdfBlake2s(out, key, input);
  const keys = [out.subarray(0, 32)];
  for (let i = 1; i < n; i++) keys.push(out.subarray(32 * i, 32 * i + 32));
  return keys;
}
