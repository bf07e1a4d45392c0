// Batched ChaCha20-Poly1305 (RFC 8439) as WireGuard's transport uses it:
// 32-byte key, nonce = 4 zero bytes || 64-bit little-endian counter, no AAD,
// 16-byte tag. Packets are sealed/opened in place through OpenSSL EVP.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace tundra::aead {

constexpr size_t kKeySize = 32;
constexpr size_t kTagSize = 16;
// Descriptor layout, one row of kDescStride uint32 per packet.
constexpr size_t kDescStride = 5;
constexpr size_t kDescOffset = 0;
constexpr size_t kDescLength = 1;
constexpr size_t kDescKeyIndex = 2;
constexpr size_t kDescCounterLo = 3;
constexpr size_t kDescCounterHi = 4;

// Raw batch entry points, usable from other native code (e.g. an I/O loop
// that never returns to JS). Callers must have validated the descriptors
// against the buffers (see the N-API glue); each row is re-checked anyway,
// and a row that no longer fits is skipped with status 0.
//
// seal: plaintext data[off, off+len) -> ciphertext in place, tag at off+len.
// open: data[off, off+len) is ciphertext || tag (len >= 16); plaintext is
//       written in place over the ciphertext; on a bad tag the plaintext
//       region is zeroed.
// status (may be null) gets 1/0 per packet. Both return the number of
// packets that succeeded.
size_t SealBatch(uint8_t* data, size_t data_len, const uint8_t* keys, size_t key_count,
                 const uint32_t* desc, size_t count, uint8_t* status);
size_t OpenBatch(uint8_t* data, size_t data_len, const uint8_t* keys, size_t key_count,
                 const uint32_t* desc, size_t count, uint8_t* status);

// Adds sealBatch, openBatch and the AEAD_* constants to the addon's exports.
void Init(Napi::Env env, Napi::Object exports);

}  // namespace tundra::aead
