// The handshake's primitives (WireGuard whitepaper §5.4): X25519 through OpenSSL,
// BLAKE2s (RFC 7693) with its keyed, HMAC and HKDF forms, ChaCha20-Poly1305 with
// the all-zero nonce, and XChaCha20-Poly1305 for cookie replies. One call per
// primitive, results written into caller buffers: node:crypto spends more on KeyObjects, Hash objects and Buffers than on the maths.
// The Noise state machine stays in TypeScript (src/protocol/noise.ts).
#include "noise_crypto.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <dlfcn.h>

#include <cstring>
#include <string>

#include "napi_args.h"

namespace tundra::noise_crypto {
namespace {

// ---- BLAKE2s ----------------------------------------------------------------

constexpr uint32_t kIv[8] = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                             0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};
constexpr uint8_t kSigma[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};
constexpr size_t kBlock = 64;

inline uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
inline uint32_t Load32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

struct Blake2s {
  uint32_t h[8];
  uint32_t t = 0;  // bytes compressed so far (handshake inputs are far below 4 GiB)
  uint8_t buf[kBlock];
  size_t fill = 0;
  size_t out_len;

  Blake2s(size_t out, const uint8_t* key, size_t key_len) : out_len(out) {
    std::memcpy(h, kIv, sizeof h);
    h[0] ^= 0x01010000u ^ static_cast<uint32_t>(key_len << 8) ^ static_cast<uint32_t>(out);
    if (key_len > 0) {
      std::memset(buf, 0, kBlock);
      std::memcpy(buf, key, key_len);
      fill = kBlock;
    }
  }

  void Compress(const uint8_t* block, bool last) {
    uint32_t m[16], v[16];
    for (int i = 0; i < 16; i++) m[i] = Load32(block + 4 * i);
    for (int i = 0; i < 8; i++) v[i] = h[i], v[i + 8] = kIv[i];
    v[12] ^= t;
    if (last) v[14] = ~v[14];
    for (const auto& s : kSigma) {
      auto g = [&](int a, int b, int c, int d, uint32_t x, uint32_t y) {
        v[a] += v[b] + x, v[d] = Rotr(v[d] ^ v[a], 16), v[c] += v[d], v[b] = Rotr(v[b] ^ v[c], 12);
        v[a] += v[b] + y, v[d] = Rotr(v[d] ^ v[a], 8), v[c] += v[d], v[b] = Rotr(v[b] ^ v[c], 7);
      };
      g(0, 4, 8, 12, m[s[0]], m[s[1]]);
      g(1, 5, 9, 13, m[s[2]], m[s[3]]);
      g(2, 6, 10, 14, m[s[4]], m[s[5]]);
      g(3, 7, 11, 15, m[s[6]], m[s[7]]);
      g(0, 5, 10, 15, m[s[8]], m[s[9]]);
      g(1, 6, 11, 12, m[s[10]], m[s[11]]);
      g(2, 7, 8, 13, m[s[12]], m[s[13]]);
      g(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
  }

  // The last block is compressed only in Final (it carries the final flag).
  void Update(const uint8_t* p, size_t n) {
    while (n > 0) {
      if (fill == kBlock) {
        t += kBlock;
        Compress(buf, false);
        fill = 0;
      }
      const size_t take = n < kBlock - fill ? n : kBlock - fill;
      std::memcpy(buf + fill, p, take);
      fill += take, p += take, n -= take;
    }
  }

  void Final(uint8_t* out) {
    t += static_cast<uint32_t>(fill);
    std::memset(buf + fill, 0, kBlock - fill);
    Compress(buf, true);
    uint8_t full[32];
    for (int i = 0; i < 8; i++) {
      for (int b = 0; b < 4; b++) full[4 * i + b] = static_cast<uint8_t>(h[i] >> (8 * b));
    }
    std::memcpy(out, full, out_len);
    OPENSSL_cleanse(full, sizeof full);
    OPENSSL_cleanse(this, sizeof *this);
  }
};

using args::View;

// HMAC-BLAKE2s (RFC 2104): a key longer than the 64-byte block is hashed first.
void Hmac(uint8_t out[32], const uint8_t* key, size_t key_len, const View* parts, size_t count) {
  uint8_t pad[kBlock] = {};
  if (key_len > kBlock) {
    Blake2s k(32, nullptr, 0);
    k.Update(key, key_len);
    k.Final(pad);
  } else {
    std::memcpy(pad, key, key_len);
  }
  for (uint8_t& b : pad) b ^= 0x36;
  Blake2s inner(32, nullptr, 0);
  inner.Update(pad, kBlock);
  for (size_t i = 0; i < count; i++) inner.Update(parts[i].data, parts[i].length);
  uint8_t inner_hash[32];
  inner.Final(inner_hash);
  for (uint8_t& b : pad) b ^= 0x36 ^ 0x5c;
  Blake2s outer(32, nullptr, 0);
  outer.Update(pad, kBlock);
  outer.Update(inner_hash, 32);
  outer.Final(out);
  OPENSSL_cleanse(pad, sizeof pad);
  OPENSSL_cleanse(inner_hash, sizeof inner_hash);
}

// ---- X25519 -----------------------------------------------------------------

constexpr size_t kKey = 32;

// node's own OpenSSL exports its X25519 functions (official builds export every
// OpenSSL symbol for addons); they cost half of EVP's path, which looks up providers
// and, for every imported private key, computes a public key it does not need. A node
// without them (linked to a shared libcrypto) gets the EVP path.
using RawX25519 = int (*)(uint8_t out[32], const uint8_t private_key[32], const uint8_t public_key[32]);
using RawPublic = void (*)(uint8_t out[32], const uint8_t private_key[32]);
const RawX25519 ossl_x25519 = reinterpret_cast<RawX25519>(dlsym(RTLD_DEFAULT, "ossl_x25519"));
const RawPublic ossl_x25519_public = reinterpret_cast<RawPublic>(dlsym(RTLD_DEFAULT, "ossl_x25519_public_from_private"));

bool AllZero(const uint8_t* p) {
  uint8_t any = 0;
  for (size_t i = 0; i < kKey; i++) any |= p[i];
  return any == 0;
}

// DH(private, public) through EVP; false when OpenSSL refuses (it rejects an
// all-zero result, a low-order public key) or the result is zero anyway.
bool X25519Evp(uint8_t out[kKey], const uint8_t* private_key, const uint8_t* public_key) {
  EVP_PKEY* own = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key, kKey);
  EVP_PKEY* peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, public_key, kKey);
  EVP_PKEY_CTX* ctx = own != nullptr ? EVP_PKEY_CTX_new(own, nullptr) : nullptr;
  size_t len = kKey;
  const bool ok = peer != nullptr && ctx != nullptr && EVP_PKEY_derive_init(ctx) == 1 &&
                  EVP_PKEY_derive_set_peer(ctx, peer) == 1 && EVP_PKEY_derive(ctx, out, &len) == 1 &&
                  len == kKey && !AllZero(out);
  if (!ok) std::memset(out, 0, kKey);
  EVP_PKEY_CTX_free(ctx);
  EVP_PKEY_free(peer);
  EVP_PKEY_free(own);
  ERR_clear_error();  // a refused derive leaves errors node:crypto would otherwise report
  return ok;
}

bool X25519(uint8_t out[kKey], const uint8_t* private_key, const uint8_t* public_key) {
  if (ossl_x25519 == nullptr) return X25519Evp(out, private_key, public_key);
  // ossl_x25519 returns 0 for an all-zero result; `out` is then zero already.
  return ossl_x25519(out, private_key, public_key) == 1;
}

bool X25519Public(uint8_t out[kKey], const uint8_t* private_key) {
  if (ossl_x25519_public != nullptr) {
    ossl_x25519_public(out, private_key);
    return true;
  }
  EVP_PKEY* key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key, kKey);
  size_t len = kKey;
  const bool ok = key != nullptr && EVP_PKEY_get_raw_public_key(key, out, &len) == 1 && len == kKey;
  EVP_PKEY_free(key);
  ERR_clear_error();
  return ok;
}

// ---- ChaCha20-Poly1305, zero nonce --------------------------------------------

constexpr size_t kTag = 16;

struct ThreadContext {
  EVP_CIPHER_CTX* ctx = nullptr;
  ThreadContext() = default;
  ThreadContext(const ThreadContext&) = delete;
  ThreadContext& operator=(const ThreadContext&) = delete;
  ~ThreadContext() { EVP_CIPHER_CTX_free(ctx); }
};
thread_local ThreadContext tls_context;

// Seals (enc) or opens in one pass; `out` holds len bytes (plus the tag when sealing).
// Inputs are handshake-sized (at most a few hundred bytes), far below int's range.
bool ChaCha(bool enc, uint8_t* out, const uint8_t* key, const uint8_t nonce[12], const uint8_t* in, size_t len,
            const uint8_t* tag_in, const uint8_t* aad, size_t aad_len) {
  EVP_CIPHER_CTX*& ctx = tls_context.ctx;
  if (ctx == nullptr) ctx = EVP_CIPHER_CTX_new();
  int n = 0;
  bool ok = ctx != nullptr &&
            EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, key, nonce, enc ? 1 : 0) == 1 &&
            (aad_len == 0 || EVP_CipherUpdate(ctx, nullptr, &n, aad, static_cast<int>(aad_len)) == 1) &&
            (len == 0 || EVP_CipherUpdate(ctx, out, &n, in, static_cast<int>(len)) == 1);
  if (ok && !enc) {
    ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kTag, const_cast<uint8_t*>(tag_in)) == 1;
  }
  ok = ok && EVP_CipherFinal_ex(ctx, out + len, &n) == 1;
  if (ok && enc) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTag, out + len) == 1;
  if (!ok) {
    std::memset(out, 0, enc ? len + kTag : len);
    ERR_clear_error();
  }
  return ok;
}

constexpr uint8_t kZeroNonce[12] = {};

// ---- XChaCha20-Poly1305 (cookie replies) ----------------------------------------

constexpr size_t kXNonce = 24;

inline void QuarterRound(uint32_t* x, int a, int b, int c, int d) {
  x[a] += x[b]; x[d] = Rotr(x[d] ^ x[a], 16);
  x[c] += x[d]; x[b] = Rotr(x[b] ^ x[c], 20);
  x[a] += x[b]; x[d] = Rotr(x[d] ^ x[a], 24);
  x[c] += x[d]; x[b] = Rotr(x[b] ^ x[c], 25);
}

// HChaCha20 (draft-irtf-cfrg-xchacha §2.2): the subkey for the first 16 bytes of the nonce.
void HChaCha20(uint8_t out[kKey], const uint8_t key[kKey], const uint8_t nonce[16]) {
  uint32_t x[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
  for (int i = 0; i < 8; i++) x[4 + i] = Load32(key + 4 * i);
  for (int i = 0; i < 4; i++) x[12 + i] = Load32(nonce + 4 * i);
  for (int round = 0; round < 10; round++) {
    QuarterRound(x, 0, 4, 8, 12); QuarterRound(x, 1, 5, 9, 13); QuarterRound(x, 2, 6, 10, 14); QuarterRound(x, 3, 7, 11, 15);
    QuarterRound(x, 0, 5, 10, 15); QuarterRound(x, 1, 6, 11, 12); QuarterRound(x, 2, 7, 8, 13); QuarterRound(x, 3, 4, 9, 14);
  }
  const int words[8] = {0, 1, 2, 3, 12, 13, 14, 15};
  for (int i = 0; i < 8; i++) {
    const uint32_t w = x[words[i]];
    out[4 * i] = static_cast<uint8_t>(w);
    out[4 * i + 1] = static_cast<uint8_t>(w >> 8);
    out[4 * i + 2] = static_cast<uint8_t>(w >> 16);
    out[4 * i + 3] = static_cast<uint8_t>(w >> 24);
  }
}

// XChaCha20-Poly1305: ChaCha20-Poly1305 under the HChaCha20 subkey, nonce 0^4 ‖ nonce[16..24).
bool XChaCha(bool enc, uint8_t* out, const uint8_t* key, const uint8_t nonce[kXNonce], const uint8_t* in, size_t len,
             const uint8_t* tag_in, const uint8_t* aad, size_t aad_len) {
  uint8_t subkey[kKey];
  uint8_t short_nonce[12] = {};
  HChaCha20(subkey, key, nonce);
  std::memcpy(short_nonce + 4, nonce + 16, 8);
  const bool ok = ChaCha(enc, out, subkey, short_nonce, in, len, tag_in, aad, aad_len);
  OPENSSL_cleanse(subkey, sizeof subkey);
  return ok;
}

// ---- N-API glue ---------------------------------------------------------------

// A Uint8Array argument (args::GetArray), its length checked against [min, max].
bool GetBytes(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
              size_t min, size_t max, View* out) {
  if (!args::GetArray(info.Env(), info[i], napi_uint8_array, fn, name, "Uint8Array", out)) return false;
  if (out->length < min || out->length > max) {
    return args::ThrowRange(info.Env(), std::string(fn) + ": " + name + " has " + std::to_string(out->length) +
                                            " bytes, expected " +
                                            (min == max ? std::to_string(min)
                                                        : std::to_string(min) + ".." + std::to_string(max)));
  }
  return true;
}

constexpr size_t kMaxParts = 8;
constexpr size_t kAny = SIZE_MAX;

// The trailing message parts of a hash call: info[first..].
bool GetParts(const Napi::CallbackInfo& info, size_t first, const char* fn, View* parts, size_t* count) {
  if (info.Length() < first || info.Length() - first > kMaxParts) {
    return args::ThrowRange(info.Env(), std::string(fn) + ": 0.." + std::to_string(kMaxParts) + " message parts");
  }
  *count = info.Length() - first;
  for (size_t i = 0; i < *count; i++) {
    if (!GetBytes(info, first + i, fn, "a message part", 0, kAny, &parts[i])) return false;
  }
  return true;
}

// blake2s(out 1..32 bytes, key 0..32 bytes, ...parts): plain (empty key) or keyed BLAKE2s.
Napi::Value Blake2sJs(const Napi::CallbackInfo& info) {
  View out{}, key{}, parts[kMaxParts];
  size_t count = 0;
  if (!GetBytes(info, 0, "blake2s", "out", 1, 32, &out) || !GetBytes(info, 1, "blake2s", "key", 0, 32, &key) ||
      !GetParts(info, 2, "blake2s", parts, &count)) {
    return info.Env().Undefined();
  }
  Blake2s h(out.length, key.data, key.length);
  for (size_t i = 0; i < count; i++) h.Update(parts[i].data, parts[i].length);
  h.Final(out.data);
  return info.Env().Undefined();
}

// hmacBlake2s(out 32 bytes, key, ...parts).
Napi::Value HmacJs(const Napi::CallbackInfo& info) {
  View out{}, key{}, parts[kMaxParts];
  size_t count = 0;
  if (!GetBytes(info, 0, "hmacBlake2s", "out", 32, 32, &out) || !GetBytes(info, 1, "hmacBlake2s", "key", 0, kAny, &key) ||
      !GetParts(info, 2, "hmacBlake2s", parts, &count)) {
    return info.Env().Undefined();
  }
  Hmac(out.data, key.data, key.length, parts, count);
  return info.Env().Undefined();
}

// hkdfBlake2s(out 32, 64 or 96 bytes, key 32 bytes, input): WireGuard's KDF_n, n = out/32.
Napi::Value HkdfJs(const Napi::CallbackInfo& info) {
  View out{}, key{}, input{};
  if (!GetBytes(info, 0, "hkdfBlake2s", "out", 32, 96, &out) || !GetBytes(info, 1, "hkdfBlake2s", "key", 32, 32, &key) ||
      !GetBytes(info, 2, "hkdfBlake2s", "input", 0, kAny, &input)) {
    return info.Env().Undefined();
  }
  if (out.length % 32 != 0) {
    args::ThrowRange(info.Env(), "hkdfBlake2s: out has " + std::to_string(out.length) + " bytes, expected 32, 64 or 96");
    return info.Env().Undefined();
  }
  uint8_t* o = out.data;
  uint8_t prk[32];
  Hmac(prk, key.data, key.length, &input, 1);
  uint8_t counter = 1;
  const View first[] = {{&counter, 1}};
  Hmac(o, prk, 32, first, 1);
  for (size_t i = 1; i < out.length / 32; i++) {
    counter = static_cast<uint8_t>(i + 1);
    const View next[] = {{o + 32 * (i - 1), 32}, {&counter, 1}};
    Hmac(o + 32 * i, prk, 32, next, 2);
  }
  OPENSSL_cleanse(prk, sizeof prk);
  return info.Env().Undefined();
}

// x25519Generate(out 64 bytes): a fresh private key (clamped) then its public key.
Napi::Value GenerateJs(const Napi::CallbackInfo& info) {
  View out{};
  if (!GetBytes(info, 0, "x25519Generate", "out", 64, 64, &out)) return info.Env().Undefined();
  uint8_t* o = out.data;
  if (RAND_priv_bytes(o, kKey) != 1) {
    ERR_clear_error();
    Napi::Error::New(info.Env(), "x25519Generate: OpenSSL's random generator failed").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  o[0] &= 248, o[31] = (o[31] & 127) | 64;
  if (!X25519Public(o + kKey, o)) {
    Napi::Error::New(info.Env(), "x25519Generate: OpenSSL refused the key").ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

// x25519Public(out 32, private 32): false if OpenSSL refuses the key.
Napi::Value PublicJs(const Napi::CallbackInfo& info) {
  View out{}, priv{};
  if (!GetBytes(info, 0, "x25519Public", "out", kKey, kKey, &out) ||
      !GetBytes(info, 1, "x25519Public", "privateKey", kKey, kKey, &priv)) {
    return info.Env().Undefined();
  }
  return Napi::Boolean::New(info.Env(), X25519Public(out.data, priv.data));
}

// x25519(out 32, private 32, public 32): false (out zeroed) for a low-order public key.
// x25519Evp is the same through EVP only, for tests to compare the two paths.
template <bool (*Dh)(uint8_t*, const uint8_t*, const uint8_t*)>
Napi::Value SharedJs(const Napi::CallbackInfo& info) {
  View out{}, priv{}, pub{};
  if (!GetBytes(info, 0, "x25519", "out", kKey, kKey, &out) || !GetBytes(info, 1, "x25519", "privateKey", kKey, kKey, &priv) ||
      !GetBytes(info, 2, "x25519", "publicKey", kKey, kKey, &pub)) {
    return info.Env().Undefined();
  }
  return Napi::Boolean::New(info.Env(), Dh(out.data, priv.data, pub.data));
}

// chachaSealZeroNonce(out = plaintext + 16 bytes, key 32, plaintext, aad).
Napi::Value SealJs(const Napi::CallbackInfo& info) {
  View out{}, key{}, pt{}, aad{};
  if (!GetBytes(info, 2, "chachaSealZeroNonce", "plaintext", 0, 65536, &pt) ||
      !GetBytes(info, 0, "chachaSealZeroNonce", "out", pt.length + kTag, pt.length + kTag, &out) ||
      !GetBytes(info, 1, "chachaSealZeroNonce", "key", kKey, kKey, &key) ||
      !GetBytes(info, 3, "chachaSealZeroNonce", "aad", 0, 65536, &aad)) {
    return info.Env().Undefined();
  }
  if (!ChaCha(true, out.data, key.data, kZeroNonce, pt.data, pt.length, nullptr, aad.data, aad.length)) {
    Napi::Error::New(info.Env(), "chachaSealZeroNonce: OpenSSL failed").ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

// chachaOpenZeroNonce(out = ciphertext - 16 bytes, key 32, ciphertext ‖ tag, aad):
// false (out zeroed) when the tag does not verify.
Napi::Value OpenJs(const Napi::CallbackInfo& info) {
  View out{}, key{}, ct{}, aad{};
  if (!GetBytes(info, 2, "chachaOpenZeroNonce", "ciphertext", kTag, 65536 + kTag, &ct) ||
      !GetBytes(info, 0, "chachaOpenZeroNonce", "out", ct.length - kTag, ct.length - kTag, &out) ||
      !GetBytes(info, 1, "chachaOpenZeroNonce", "key", kKey, kKey, &key) ||
      !GetBytes(info, 3, "chachaOpenZeroNonce", "aad", 0, 65536, &aad)) {
    return info.Env().Undefined();
  }
  const size_t len = ct.length - kTag;
  return Napi::Boolean::New(info.Env(), ChaCha(false, out.data, key.data, kZeroNonce, ct.data, len,
                                               ct.data + len, aad.data, aad.length));
}

// xchachaSeal(out = plaintext + 16 bytes, key 32, nonce 24, plaintext, aad).
Napi::Value XSealJs(const Napi::CallbackInfo& info) {
  View out{}, key{}, nonce{}, pt{}, aad{};
  if (!GetBytes(info, 3, "xchachaSeal", "plaintext", 0, 65536, &pt) ||
      !GetBytes(info, 0, "xchachaSeal", "out", pt.length + kTag, pt.length + kTag, &out) ||
      !GetBytes(info, 1, "xchachaSeal", "key", kKey, kKey, &key) ||
      !GetBytes(info, 2, "xchachaSeal", "nonce", kXNonce, kXNonce, &nonce) ||
      !GetBytes(info, 4, "xchachaSeal", "aad", 0, 65536, &aad)) {
    return info.Env().Undefined();
  }
  if (!XChaCha(true, out.data, key.data, nonce.data, pt.data, pt.length, nullptr, aad.data, aad.length)) {
    Napi::Error::New(info.Env(), "xchachaSeal: OpenSSL failed").ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

// xchachaOpen(out = ciphertext - 16 bytes, key 32, nonce 24, ciphertext ‖ tag, aad):
// false (out zeroed) when the tag does not verify.
Napi::Value XOpenJs(const Napi::CallbackInfo& info) {
  View out{}, key{}, nonce{}, ct{}, aad{};
  if (!GetBytes(info, 3, "xchachaOpen", "ciphertext", kTag, 65536 + kTag, &ct) ||
      !GetBytes(info, 0, "xchachaOpen", "out", ct.length - kTag, ct.length - kTag, &out) ||
      !GetBytes(info, 1, "xchachaOpen", "key", kKey, kKey, &key) ||
      !GetBytes(info, 2, "xchachaOpen", "nonce", kXNonce, kXNonce, &nonce) ||
      !GetBytes(info, 4, "xchachaOpen", "aad", 0, 65536, &aad)) {
    return info.Env().Undefined();
  }
  const size_t len = ct.length - kTag;
  return Napi::Boolean::New(info.Env(), XChaCha(false, out.data, key.data, nonce.data, ct.data, len,
                                                ct.data + len, aad.data, aad.length));
}

}  // namespace

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("blake2s", Napi::Function::New(env, Blake2sJs, "blake2s"));
  exports.Set("hmacBlake2s", Napi::Function::New(env, HmacJs, "hmacBlake2s"));
  exports.Set("hkdfBlake2s", Napi::Function::New(env, HkdfJs, "hkdfBlake2s"));
  exports.Set("x25519Generate", Napi::Function::New(env, GenerateJs, "x25519Generate"));
  exports.Set("x25519Public", Napi::Function::New(env, PublicJs, "x25519Public"));
  exports.Set("x25519", Napi::Function::New(env, SharedJs<X25519>, "x25519"));
  exports.Set("x25519Evp", Napi::Function::New(env, SharedJs<X25519Evp>, "x25519Evp"));
  exports.Set("chachaSealZeroNonce", Napi::Function::New(env, SealJs, "chachaSealZeroNonce"));
  exports.Set("chachaOpenZeroNonce", Napi::Function::New(env, OpenJs, "chachaOpenZeroNonce"));
  exports.Set("xchachaSeal", Napi::Function::New(env, XSealJs, "xchachaSeal"));
  exports.Set("xchachaOpen", Napi::Function::New(env, XOpenJs, "xchachaOpen"));
}

}  // namespace tundra::noise_crypto
