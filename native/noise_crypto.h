// The handshake's cryptographic primitives for src/crypto/x25519.ts, blake2s.ts and aead.ts: X25519,
// BLAKE2s (plain, keyed, HMAC, HKDF), zero-nonce ChaCha20-Poly1305 and the cookie's
// XChaCha20-Poly1305, each one
// N-API call that writes into a caller's Uint8Array.
#pragma once

#include <napi.h>

namespace tundra::noise_crypto {

// Adds blake2s, hmacBlake2s, hkdfBlake2s, x25519Generate, x25519Public, x25519,
// chachaSealZeroNonce, chachaOpenZeroNonce, xchachaSeal and xchachaOpen to the addon's exports.
void Init(Napi::Env env, Napi::Object exports);

}  // namespace tundra::noise_crypto
