// BLAKE2s and the HMAC/HKDF built on it, as the Noise_IKpsk2 handshake and
// the MAC/cookie scheme use them (WireGuard whitepaper §5.4). The hash and HMAC run
// in node:crypto (OpenSSL: HMAC about 3× @noble's); node has no keyed BLAKE2s-128,
// so MAC1/MAC2 and cookies stay on @noble. Tests check both against @noble.
import { createHash, createHmac } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';

/** A digest Buffer as a plain Uint8Array view (no copy). */
const view = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.length);

/** HASH(a ‖ b ‖ …): 32-byte BLAKE2s. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('blake2s256');
  for (const p of parts) h.update(p);
  return view(h.digest());
}

/** MAC(key, a ‖ b ‖ …): 16-byte keyed BLAKE2s. */
export function mac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = blake2s.create({ key, dkLen: 16 });
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HMAC-BLAKE2s (32 bytes). */
export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac('blake2s256', key);
  for (const p of parts) h.update(p);
  return view(h.digest());
}

const ONE = Uint8Array.of(1);
const TWO = Uint8Array.of(2);
const THREE = Uint8Array.of(3);

/** HKDF with HMAC-BLAKE2s, returning the first `n` 32-byte outputs (n = 1..3). */
export function kdf(n: 1, key: Uint8Array, input: Uint8Array): [Uint8Array];
export function kdf(n: 2, key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array];
export function kdf(n: 3, key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array];
export function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const prk = hmac(key, input);
  const t1 = hmac(prk, ONE);
  if (n === 1) { prk.fill(0); return [t1]; }
  const t2 = hmac(prk, t1, TWO);
  if (n === 2) { prk.fill(0); return [t1, t2]; }
  const t3 = hmac(prk, t2, THREE);
  prk.fill(0);
  return [t1, t2, t3];
}
