// Shared by the AEAD tests: the WireGuard nonce, one transport message sealed or
// opened with @noble (the twin the batch backends are held to), hex literals, and a
// byte comparison that names the first difference instead of printing a 64 KiB diff.
import assert from 'node:assert/strict';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';

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
