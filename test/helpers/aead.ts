// Shared by the AEAD tests and benches: the WireGuard nonce, one transport message sealed
// or opened with @noble (the twin the batch backends are held to), hex literals, a byte
// comparison that names the first difference instead of printing a 64 KiB diff, and
// descriptors written one at a time (the stages write their rows in place).
import assert from 'node:assert/strict';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { DESC_COUNTER_HI, DESC_COUNTER_LO, DESC_KEY_INDEX, DESC_LENGTH, DESC_OFFSET, DESC_STRIDE } from '../../src/crypto/native-aead.js';

/** WireGuard's transport nonce: 4 zero bytes, then the 64-bit counter little-endian. */
export function wgNonce(counter: bigint): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(4, counter, true);
  return n;
}

/** ChaCha20-Poly1305 of one transport payload under `counter` (ciphertext ‖ tag). */
export function sealTransport(key: Uint8Array, counter: bigint, plaintext: Uint8Array): Uint8Array {
  return chacha20poly1305(key, wgNonce(counter)).encrypt(plaintext);
}

/** Opens what sealTransport made; undefined when the tag does not verify. */
export function openTransport(key: Uint8Array, counter: bigint, ciphertext: Uint8Array): Uint8Array | undefined {
  try {
    return chacha20poly1305(key, wgNonce(counter)).decrypt(ciphertext);
  } catch {
    return undefined;
  }
}

/** Bytes from hex text; white space and colons are ignored. */
export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/[\s:]/g, ''), 'hex'));

export function equalBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.equals(e)) return;
  let i = 0;
  while (i < a.length && a[i] === e[i]) i++;
  assert.fail(`${what}: bytes differ at ${i} (lengths ${a.length}/${e.length})`);
}

const TWO_32 = 0x1_0000_0000;

/**
 * Writes descriptor `index` of `desc`. `counter` is the 64-bit nonce counter, as a
 * bigint or as a non-negative safe integer. Throws a RangeError for a counter
 * outside [0, 2^64) or an inexact number.
 */
export function setDescriptor(
  desc: Uint32Array,
  index: number,
  offset: number,
  length: number,
  keyIndex: number,
  counter: bigint | number,
): void {
  let lo: number;
  let hi: number;
  if (typeof counter === 'bigint') {
    if (counter < 0n || counter >= 1n << 64n) throw new RangeError(`counter ${counter} is not a uint64`);
    lo = Number(counter & 0xffff_ffffn);
    hi = Number(counter >> 32n);
  } else {
    if (!Number.isSafeInteger(counter) || counter < 0) throw new RangeError(`counter ${counter} is not a safe uint`);
    lo = counter % TWO_32;
    hi = Math.floor(counter / TWO_32);
  }
  const base = index * DESC_STRIDE;
  desc[base + DESC_OFFSET] = offset;
  desc[base + DESC_LENGTH] = length;
  desc[base + DESC_KEY_INDEX] = keyIndex;
  desc[base + DESC_COUNTER_LO] = lo;
  desc[base + DESC_COUNTER_HI] = hi;
}
