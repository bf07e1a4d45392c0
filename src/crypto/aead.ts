// Single-message AEADs for the handshake and cookie messages, through @noble/ciphers.
// Bulk transport data goes through the native batch (native-aead.ts) instead.
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';

const ZERO_NONCE = new Uint8Array(12);

/** ChaCha20-Poly1305 with the all-zero nonce (each handshake key is used once). */
export function sealZeroNonce(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  return chacha20poly1305(key, ZERO_NONCE, aad).encrypt(plaintext);
}

/** Opens what sealZeroNonce made; undefined when the tag does not verify. */
export function openZeroNonce(key: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
  try {
    return chacha20poly1305(key, ZERO_NONCE, aad).decrypt(ciphertext);
  } catch {
    return undefined;
  }
}

/** ChaCha20-Poly1305 with a WireGuard transport nonce: 4 zero bytes ‖ 64-bit little-endian counter. */
export function transportNonce(counter: bigint): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, counter, true);
  return nonce;
}

export function sealTransport(key: Uint8Array, counter: bigint, plaintext: Uint8Array): Uint8Array {
  return chacha20poly1305(key, transportNonce(counter)).encrypt(plaintext);
}

export function openTransport(key: Uint8Array, counter: bigint, ciphertext: Uint8Array): Uint8Array | undefined {
  try {
    return chacha20poly1305(key, transportNonce(counter)).decrypt(ciphertext);
  } catch {
    return undefined;
  }
}

export function xsealCookie(key: Uint8Array, nonce: Uint8Array, cookie: Uint8Array, aad: Uint8Array): Uint8Array {
  return xchacha20poly1305(key, nonce, aad).encrypt(cookie);
}

export function xopenCookie(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
  try {
    return xchacha20poly1305(key, nonce, aad).decrypt(sealed);
  } catch {
    return undefined;
  }
}
