// Batched, in-place ChaCha20-Poly1305 with node's own OpenSSL (the node binary
// exports the symbols, so nothing extra is linked), two ways:
// - direct: OpenSSL's ChaCha20 and Poly1305 primitives, which a node built with its
//   bundled OpenSSL exports: one ChaCha20 call per packet makes the Poly1305 key block
//   and the whole payload's keystream. The EVP AEAD makes two more calls per packet
//   for a single 64-byte block (the Poly1305 key, and the payload's partial tail), and
//   OpenSSL's AVX-512 path for inputs up to 512 bytes costs as much as for 1 KiB: on
//   this bench those two took as much CPU as the payloads' own encryption.
// - evp: the EVP AEAD, where the primitives are not exported (a node on a shared
//   libcrypto), and for the tests to hold the two to the same bytes.
#include "aead.h"

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <cmath>
#include <cstring>
#include <string>

#include "cpu.h"
#include "napi_args.h"

namespace tundra::aead {
namespace {

constexpr int kNonceSize = 12;
// EVP_CipherUpdate takes an int length; longer packets are fed in pieces.
constexpr size_t kMaxUpdate = size_t{1} << 30;

// One context per direction per thread. The cipher is bound once, so a packet
// only costs a key/nonce re-init. thread_local (not per-env instance data)
// keeps worker threads apart and would also serve libuv pool threads; the
// destructor frees the contexts when the thread exits.
struct ThreadContexts {
  EVP_CIPHER_CTX* ctx[2] = {nullptr, nullptr};  // [0] open (decrypt), [1] seal
  ThreadContexts() = default;
  ThreadContexts(const ThreadContexts&) = delete;
  ThreadContexts& operator=(const ThreadContexts&) = delete;
  ~ThreadContexts() {
    for (EVP_CIPHER_CTX* c : ctx) EVP_CIPHER_CTX_free(c);
  }
};
thread_local ThreadContexts tls_contexts;

EVP_CIPHER_CTX* Context(int enc) {
  EVP_CIPHER_CTX*& slot = tls_contexts.ctx[enc];
  if (slot != nullptr) return slot;
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  if (c == nullptr) return nullptr;
  if (EVP_CipherInit_ex(c, EVP_chacha20_poly1305(), nullptr, nullptr, nullptr, enc) != 1 ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, kNonceSize, nullptr) != 1) {
    EVP_CIPHER_CTX_free(c);
    return nullptr;
  }
  slot = c;
  return c;
}

// After an unexpected EVP failure the context's state is unknown: start over.
void DropContext(int enc) {
  EVP_CIPHER_CTX_free(tls_contexts.ctx[enc]);
  tls_contexts.ctx[enc] = nullptr;
}

struct Row {
  uint32_t offset, length, key_index, counter_lo, counter_hi;
};

// Each row is read exactly once into locals and checked there: a
// SharedArrayBuffer-backed descriptor array may change under us, and the
// bounds we checked must be the bounds we use.
inline Row ReadRow(const uint32_t* desc, size_t i) {
  const volatile uint32_t* r = desc + i * kDescStride;
  return Row{r[kDescOffset], r[kDescLength], r[kDescKeyIndex], r[kDescCounterLo],
             r[kDescCounterHi]};
}

enum class Problem { kNone, kKeyIndex, kTooShort, kBounds };

// kDirectPortable: direct, with the plain keystream XOR even where AVX2 is there (tests).
enum class Variant { kBest = 0, kEvp = 1, kDirect = 2, kDirectPortable = 3 };

template <bool kSeal>
inline Problem Check(const Row& r, size_t data_len, size_t key_count) {
  if (r.key_index >= key_count) return Problem::kKeyIndex;
  // 64-bit sums: offset + length cannot wrap.
  const uint64_t end = uint64_t{r.offset} + r.length;
  if constexpr (kSeal) {
    if (end + kTagSize > data_len) return Problem::kBounds;
  } else {
    if (r.length < kTagSize) return Problem::kTooShort;
    if (end > data_len) return Problem::kBounds;
  }
  return Problem::kNone;
}

inline void Nonce(uint8_t n[kNonceSize], uint32_t lo, uint32_t hi) {
  // 4 zero bytes, then the 64-bit counter little-endian (WireGuard).
  n[0] = n[1] = n[2] = n[3] = 0;
  for (int b = 0; b < 4; b++) {
    n[4 + b] = static_cast<uint8_t>(lo >> (8 * b));
    n[8 + b] = static_cast<uint8_t>(hi >> (8 * b));
  }
}

// In-place stream update; OpenSSL allows out == in exactly.
inline bool Update(EVP_CIPHER_CTX* c, uint8_t* p, size_t len) {
  while (len > 0) {
    const int n = static_cast<int>(len < kMaxUpdate ? len : kMaxUpdate);
    int out = 0;
    if (EVP_CipherUpdate(c, p, &out, p, n) != 1 || out != n) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

enum class Outcome { kOk, kBadTag, kEvpError };

// ---- direct: OpenSSL's primitives ------------------------------------------

using ChaChaFn = void (*)(unsigned char* out, const unsigned char* in, size_t len,
                          const unsigned int key[8], const unsigned int counter[4]);
using PolySizeFn = size_t (*)();
using PolyInitFn = int (*)(void* ctx, const unsigned char key[32]);
using PolyUpdateFn = void (*)(void* ctx, const unsigned char* in, size_t len);
using PolyFinalFn = void (*)(void* ctx, unsigned char mac[16]);

struct Primitives {
  ChaChaFn chacha = nullptr;
  PolyInitFn poly_init = nullptr;
  PolyUpdateFn poly_update = nullptr;
  PolyFinalFn poly_final = nullptr;
};

constexpr size_t kPolyContextMax = 256;
constexpr size_t kBlock = 64;
// The longest payload the direct way takes. Its keystream goes through a buffer, one
// more pass over the bytes: cheap while it stays in L1 (1420 bytes: 1.3-1.5x EVP's speed),
// a loss for 64 KiB (0.6x), where EVP's two extra 64-byte calls no longer matter.
constexpr size_t kDirectMax = 8192;
constexpr size_t kStreamMax = kBlock + kDirectMax;
alignas(64) const uint8_t kZeros[kStreamMax] = {};

// Looked up once; null members when node does not export them.
const Primitives* LoadPrimitives() {
  static const Primitives* loaded = [] {
    static Primitives p;
    p.chacha = reinterpret_cast<ChaChaFn>(dlsym(RTLD_DEFAULT, "ChaCha20_ctr32"));
    const auto size = reinterpret_cast<PolySizeFn>(dlsym(RTLD_DEFAULT, "Poly1305_ctx_size"));
    p.poly_init = reinterpret_cast<PolyInitFn>(dlsym(RTLD_DEFAULT, "Poly1305_Init"));
    p.poly_update = reinterpret_cast<PolyUpdateFn>(dlsym(RTLD_DEFAULT, "Poly1305_Update"));
    p.poly_final = reinterpret_cast<PolyFinalFn>(dlsym(RTLD_DEFAULT, "Poly1305_Final"));
    const bool all = p.chacha != nullptr && size != nullptr && p.poly_init != nullptr &&
                     p.poly_update != nullptr && p.poly_final != nullptr &&
                     size() <= kPolyContextMax;
    return all ? &p : nullptr;
  }();
  return loaded;
}

struct alignas(64) DirectScratch {
  uint8_t stream[kStreamMax];
  uint8_t poly[kPolyContextMax];
};
// Reached once per batch (RunBatch), not per packet: each access to a thread_local
// of a dlopen'ed library is a __tls_get_addr call (2 % of a TCP transfer's CPU).
thread_local DirectScratch tls_direct;

// The keystream from block 0 (the Poly1305 key) through the payload's last block.
inline const uint8_t* Keystream(const Primitives& f, DirectScratch& s, size_t len,
                                const uint8_t* key, uint32_t lo, uint32_t hi) {
  unsigned int k[8];
  std::memcpy(k, key, sizeof k);  // little-endian words, as ChaCha20 reads its key
  const unsigned int counter[4] = {0, 0, lo, hi};  // block 0; nonce 0 ‖ lo ‖ hi
  const size_t n = kBlock + (len + kBlock - 1) / kBlock * kBlock;
  f.chacha(s.stream, kZeros, n, k, counter);
  return s.stream;
}

inline void XorLoop(uint8_t* p, const uint8_t* ks, size_t len) {
  for (size_t i = 0; i < len; i++) p[i] ^= ks[i];
}

void XorPortable(uint8_t* p, const uint8_t* ks, size_t len) { XorLoop(p, ks, len); }

// The compiler's loop in 32-byte lanes instead of SSE2's 16: this pass was most of
// RunBatch's own time on a TCP transfer (3 % of the daemons' CPU).
__attribute__((target("avx2"))) void XorAvx2(uint8_t* p, const uint8_t* ks, size_t len) {
  XorLoop(p, ks, len);
}

using XorFn = void (*)(uint8_t* p, const uint8_t* ks, size_t len);

// RFC 8439's tag over an empty AAD and `len` bytes of ciphertext.
inline void Tag(const Primitives& f, DirectScratch& s, const uint8_t* poly_key,
                const uint8_t* ct, size_t len, uint8_t tag[kTagSize]) {
  void* ctx = s.poly;
  f.poly_init(ctx, poly_key);
  f.poly_update(ctx, ct, len);
  if (len % 16 != 0) f.poly_update(ctx, kZeros, 16 - len % 16);
  uint8_t lengths[16] = {};
  for (int b = 0; b < 8; b++) lengths[8 + b] = static_cast<uint8_t>(uint64_t{len} >> (8 * b));
  f.poly_update(ctx, lengths, sizeof lengths);
  f.poly_final(ctx, tag);
}

inline Outcome SealDirect(const Primitives& f, DirectScratch& s, XorFn xor_fn, uint8_t* p,
                          size_t len, const uint8_t* key, uint32_t lo, uint32_t hi) {
  const uint8_t* ks = Keystream(f, s, len, key, lo, hi);
  xor_fn(p, ks + kBlock, len);
  Tag(f, s, ks, p, len, p + len);
  return Outcome::kOk;
}

inline Outcome OpenDirect(const Primitives& f, DirectScratch& s, XorFn xor_fn, uint8_t* p,
                          size_t len, const uint8_t* key, uint32_t lo, uint32_t hi) {
  const uint8_t* ks = Keystream(f, s, len, key, lo, hi);
  uint8_t tag[kTagSize];
  Tag(f, s, ks, p, len, tag);
  if (CRYPTO_memcmp(tag, p + len, kTagSize) != 0) return Outcome::kBadTag;
  xor_fn(p, ks + kBlock, len);
  return Outcome::kOk;
}

// ---- evp ---------------------------------------------------------------------

// key == nullptr keeps the key the context already holds (same key as the
// previous packet): an IV-only re-init skips the key setup.
inline Outcome SealOne(EVP_CIPHER_CTX* c, uint8_t* p, size_t len, const uint8_t* key,
                       const uint8_t nonce[kNonceSize]) {
  uint8_t scratch[32];
  int out = 0;
  if (EVP_CipherInit_ex(c, nullptr, nullptr, key, nonce, 1) != 1) return Outcome::kEvpError;
  if (!Update(c, p, len)) return Outcome::kEvpError;
  if (EVP_CipherFinal_ex(c, scratch, &out) != 1 || out != 0) return Outcome::kEvpError;
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize), p + len) != 1)
    return Outcome::kEvpError;
  return Outcome::kOk;
}

// len is the ciphertext length without the tag, which follows at p + len.
inline Outcome OpenOne(EVP_CIPHER_CTX* c, uint8_t* p, size_t len, const uint8_t* key,
                       const uint8_t nonce[kNonceSize]) {
  uint8_t scratch[32];
  int out = 0;
  if (EVP_CipherInit_ex(c, nullptr, nullptr, key, nonce, 0) != 1) return Outcome::kEvpError;
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize), p + len) != 1)
    return Outcome::kEvpError;
  if (!Update(c, p, len)) return Outcome::kEvpError;
  // Final is where the tag is compared; 0 here is an ordinary forgery or
  // corruption, not an internal error.
  if (EVP_CipherFinal_ex(c, scratch, &out) != 1) return Outcome::kBadTag;
  return out == 0 ? Outcome::kOk : Outcome::kEvpError;
}

template <bool kSeal>
size_t RunBatch(uint8_t* data, size_t data_len, const uint8_t* keys, size_t key_count,
                const uint32_t* desc, size_t count, uint8_t* status, Variant variant) {
  constexpr int kEnc = kSeal ? 1 : 0;
  const Primitives* direct = variant == Variant::kEvp ? nullptr : LoadPrimitives();
  DirectScratch* scratch = direct != nullptr ? &tls_direct : nullptr;
  const XorFn xor_fn = cpu::kHasAvx2 && variant != Variant::kDirectPortable ? XorAvx2 : XorPortable;
  size_t done = 0;
  bool failed = false;
  EVP_CIPHER_CTX* c = nullptr;
  const uint8_t* held_key = nullptr;  // the key c was last initialised with
  uint8_t nonce[kNonceSize];
  for (size_t i = 0; i < count; i++) {
    const Row r = ReadRow(desc, i);
    Outcome o = Outcome::kEvpError;
    const bool valid = Check<kSeal>(r, data_len, key_count) == Problem::kNone;
    // Only read when valid: Check() holds r.length >= kTagSize to open.
    const size_t payload = kSeal ? r.length : r.length - kTagSize;
    if (valid && direct != nullptr && payload <= kDirectMax) {
      const uint8_t* key = keys + size_t{r.key_index} * kKeySize;
      uint8_t* p = data + r.offset;
      if constexpr (kSeal) {
        o = SealDirect(*direct, *scratch, xor_fn, p, payload, key, r.counter_lo, r.counter_hi);
      } else {
        o = OpenDirect(*direct, *scratch, xor_fn, p, payload, key, r.counter_lo, r.counter_hi);
        if (o != Outcome::kOk) std::memset(p, 0, payload);
      }
    } else if (valid) {
      if (c == nullptr) {
        c = Context(kEnc);
        held_key = nullptr;
      }
      if (c != nullptr) {
        const uint8_t* key = keys + size_t{r.key_index} * kKeySize;
        Nonce(nonce, r.counter_lo, r.counter_hi);
        uint8_t* p = data + r.offset;
        const uint8_t* k = key == held_key ? nullptr : key;
        if constexpr (kSeal) {
          o = SealOne(c, p, r.length, k, nonce);
        } else {
          o = OpenOne(c, p, r.length - kTagSize, k, nonce);
          // Never hand back unauthenticated plaintext.
          if (o != Outcome::kOk) std::memset(p, 0, r.length - kTagSize);
        }
        if (o == Outcome::kEvpError) {
          DropContext(kEnc);
          c = nullptr;
          held_key = nullptr;
        } else {
          held_key = key;
        }
      }
    }
    const bool ok = o == Outcome::kOk;
    if (status != nullptr) status[i] = ok ? 1 : 0;
    if (ok) {
      done++;
    } else {
      failed = true;
    }
  }
  // Leave no stale entries on this thread's OpenSSL error queue for node's
  // own crypto code to trip over.
  if (failed) ERR_clear_error();
  return done;
}

// ---- N-API glue ----------------------------------------------------------

using args::GetArray;
using args::ThrowRange;
using args::ThrowType;
using args::View;

std::string RowMessage(const char* fn, size_t i, const Row& r, Problem p, size_t data_len,
                       size_t key_count, bool seal) {
  std::string m = std::string(fn) + ": descriptor " + std::to_string(i) + ": ";
  const uint64_t end = uint64_t{r.offset} + r.length;
  switch (p) {
    case Problem::kKeyIndex:
      return m + "keyIndex " + std::to_string(r.key_index) + " is out of range (" +
             std::to_string(key_count) + " keys)";
    case Problem::kTooShort:
      return m + "length " + std::to_string(r.length) + " is shorter than the 16-byte tag";
    case Problem::kBounds:
      return m + (seal ? "offset + length + 16 = " + std::to_string(end + kTagSize)
                       : "offset + length = " + std::to_string(end)) +
             " exceeds data.length " + std::to_string(data_len);
    case Problem::kNone:
      break;
  }
  return m;
}

template <bool kSeal>
Napi::Value BatchJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  const char* fn = kSeal ? "sealBatch" : "openBatch";
  View data, keys, desc, status;
  if (!GetArray(env, info[0], napi_uint8_array, fn, "data", "Uint8Array", &data) ||
      !GetArray(env, info[1], napi_uint8_array, fn, "keys", "Uint8Array", &keys) ||
      !GetArray(env, info[2], napi_uint32_array, fn, "desc", "Uint32Array", &desc)) {
    return Napi::Value();
  }
  if (!info[3].IsNumber()) {
    ThrowType(env, std::string(fn) + ": count must be a number");
    return Napi::Value();
  }
  const double count_d = info[3].As<Napi::Number>().DoubleValue();
  const size_t rows = desc.length / kDescStride;
  if (!(count_d >= 0) || std::floor(count_d) != count_d || count_d > static_cast<double>(rows)) {
    ThrowRange(env, std::string(fn) + ": count " + Napi::Number::New(env, count_d).ToString().Utf8Value() +
                        " is not an integer in [0, " + std::to_string(rows) +
                        "] (desc holds " + std::to_string(rows) + " descriptors)");
    return Napi::Value();
  }
  const size_t count = static_cast<size_t>(count_d);
  if (keys.length % kKeySize != 0) {
    ThrowRange(env, std::string(fn) + ": keys.length " + std::to_string(keys.length) +
                        " is not a multiple of 32");
    return Napi::Value();
  }
  const size_t key_count = keys.length / kKeySize;
  // ok is required for open, optional for seal.
  const bool want_status = !kSeal || (info.Length() > 4 && !info[4].IsUndefined());
  if (want_status) {
    if (!GetArray(env, info[4], napi_uint8_array, fn, "ok", "Uint8Array", &status)) {
      return Napi::Value();
    }
    if (status.length < count) {
      ThrowRange(env, std::string(fn) + ": ok.length " + std::to_string(status.length) +
                          " is less than count " + std::to_string(count));
      return Napi::Value();
    }
  }
  // A bad descriptor is a caller bug: reject the whole call before touching
  // any packet, so a throw means nothing was modified.
  const uint32_t* d = reinterpret_cast<const uint32_t*>(desc.data);
  for (size_t i = 0; i < count; i++) {
    const Row r = ReadRow(d, i);
    const Problem p = Check<kSeal>(r, data.length, key_count);
    if (p != Problem::kNone) {
      ThrowRange(env, RowMessage(fn, i, r, p, data.length, key_count, kSeal));
      return Napi::Value();
    }
  }
  // The way (tests): 0, or absent, the fastest this node allows; 1 evp; 2 direct and 3
  // direct with the plain XOR loop, both refused where node does not export its primitives.
  Variant variant = Variant::kBest;
  if (info.Length() > 5 && !info[5].IsUndefined()) {
    const double v = info[5].IsNumber() ? info[5].As<Napi::Number>().DoubleValue() : -1;
    if (v != 0 && v != 1 && v != 2 && v != 3) {
      ThrowRange(env, std::string(fn) + ": variant must be 0 (the fastest), 1 (evp), 2 (direct) or 3 (direct, plain XOR)");
      return Napi::Value();
    }
    variant = static_cast<Variant>(static_cast<int>(v));
    if ((variant == Variant::kDirect || variant == Variant::kDirectPortable) && LoadPrimitives() == nullptr) {
      ThrowRange(env, std::string(fn) + ": variant " + std::to_string(static_cast<int>(v)) + " (direct): this node does not export OpenSSL's ChaCha20 and Poly1305 primitives");
      return Napi::Value();
    }
  }
  const size_t done = RunBatch<kSeal>(data.data, data.length, keys.data, key_count, d, count,
                                      want_status ? status.data : nullptr, variant);
  return Napi::Number::New(env, static_cast<double>(done));
}

}  // namespace

size_t SealBatch(uint8_t* data, size_t data_len, const uint8_t* keys, size_t key_count,
                 const uint32_t* desc, size_t count, uint8_t* status) {
  return RunBatch<true>(data, data_len, keys, key_count, desc, count, status, Variant::kBest);
}

size_t OpenBatch(uint8_t* data, size_t data_len, const uint8_t* keys, size_t key_count,
                 const uint32_t* desc, size_t count, uint8_t* status) {
  return RunBatch<false>(data, data_len, keys, key_count, desc, count, status, Variant::kBest);
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("sealBatch", Napi::Function::New(env, BatchJs<true>, "sealBatch"));
  exports.Set("openBatch", Napi::Function::New(env, BatchJs<false>, "openBatch"));
  // The TS wrapper checks its own constants against these at load time.
  exports.Set("AEAD_KEY_SIZE", Napi::Number::New(env, kKeySize));
  exports.Set("AEAD_TAG_SIZE", Napi::Number::New(env, kTagSize));
  exports.Set("AEAD_DESC_STRIDE", Napi::Number::New(env, kDescStride));
  exports.Set("AEAD_DIRECT", Napi::Number::New(env, LoadPrimitives() != nullptr ? 1 : 0));
}

}  // namespace tundra::aead
