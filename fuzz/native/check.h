// Shared by the fuzz harnesses: an invariant check that fails like a crash,
// and an independent byte-at-a-time RFC 1071 sum to check the addon's against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#define FUZZ_REQUIRE(cond)                                                          \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace fuzz {

// Big-endian 16-bit words, the odd last byte zero-padded; folded, not complemented.
inline uint32_t RefSum(const uint8_t* p, size_t n, uint64_t acc = 0) {
  for (size_t i = 0; i < n; i++) acc += i % 2 == 0 ? uint32_t{p[i]} << 8 : p[i];
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint32_t>(acc);
}

// memcmp that takes an empty range of a null pointer (an empty vector's data()).
inline bool Equal(const void* a, const void* b, size_t n) { return n == 0 || std::memcmp(a, b, n) == 0; }

inline uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// The folded sum of an L4 segment with its pseudo-header: 0xffff when its checksum is right.
inline uint32_t L4Sum(const uint8_t* ip, bool v4, uint8_t proto, size_t iphlen, size_t l4_len) {
  uint64_t acc = v4 ? RefSum(ip + 12, 8) : RefSum(ip + 8, 32);
  acc += proto + (l4_len & 0xffff) + (l4_len >> 16);
  return RefSum(ip + iphlen, l4_len, acc);
}

}  // namespace fuzz
