// Single-message AEADs of the handshake: its zero-nonce ChaCha20-Poly1305 and the
// cookie's XChaCha20-Poly1305, in the addon (native/noise_crypto.cc, one call each: a
// cookie reply under a handshake flood must cost little). Transport messages are
// sealed and opened by the batch backends (backends.ts), even one at a time.
import { nativeFunction } from '../native/addon.js';
import { AEAD_TAG_SIZE as TAG_SIZE } from './sizes.js';

type ZeroNonceFn = (out: Uint8Array, key: Uint8Array, input: Uint8Array, aad: Uint8Array) => boolean;
const chachaSealZeroNonce = nativeFunction<ZeroNonceFn>('chachaSealZeroNonce');
const chachaOpenZeroNonce = nativeFunction<ZeroNonceFn>('chachaOpenZeroNonce');
type XChaChaFn = (out: Uint8Array, key: Uint8Array, nonce: Uint8Array, input: Uint8Array, aad: Uint8Array) => boolean;
const xchachaSeal = nativeFunction<XChaChaFn>('xchachaSeal');
const xchachaOpen = nativeFunction<XChaChaFn>('xchachaOpen');

/** ChaCha20-Poly1305 with the all-zero nonce (each handshake key is used once). */
export function sealZeroNonce(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const out = new Uint8Array(plaintext.length + TAG_SIZE);
  chachaSealZeroNonce(out, key, plaintext, aad);
  return out;
}

/** Opens what sealZeroNonce made; undefined when the tag does not verify (or it is shorter than one). */
export function openZeroNonce(key: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
  if (ciphertext.length < TAG_SIZE) return undefined;
  const out = new Uint8Array(ciphertext.length - TAG_SIZE);
  return chachaOpenZeroNonce(out, key, ciphertext, aad) ? out : undefined;
}

/** XChaCha20-Poly1305 (24-byte nonce) of a cookie, into `out` (cookie + 16 bytes) when given. */
export function xsealCookie(key: Uint8Array, nonce: Uint8Array, cookie: Uint8Array, aad: Uint8Array, out = new Uint8Array(cookie.length + TAG_SIZE)): Uint8Array {
  xchachaSeal(out, key, nonce, cookie, aad);
  return out;
}

/** Opens what xsealCookie made; undefined when the tag does not verify (or it is shorter than one). */
export function xopenCookie(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
  if (sealed.length < TAG_SIZE) return undefined;
  const out = new Uint8Array(sealed.length - TAG_SIZE);
  return xchachaOpen(out, key, nonce, sealed, aad) ? out : undefined;
}
