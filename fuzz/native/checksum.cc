// Sum/Fold (32-bit words, native byte order) against the byte-at-a-time sum,
// from any start alignment and with any carried-in accumulator; PseudoSum4/6 too.
#include <cstring>

#include "check.h"
#include "offload.h"

using namespace tundra::offload;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* in, size_t n) {
  if (n < 2) return 0;
  const size_t skew = in[0] % 8;  // misaligns the buffer Sum reads
  const uint16_t acc16 = static_cast<uint16_t>(in[1] << 8);
  const uint8_t* p = in + 2;
  n -= 2;
  uint8_t* copy = new uint8_t[n + skew];
  std::memcpy(copy + skew, p, n);
  const uint16_t native = Fold(Sum(copy + skew, n, Be16Native(acc16)));
  uint8_t be[2];
  std::memcpy(be, &native, 2);
  // Both fold the same total with end-around carries: equal, 0 only for a zero total.
  FUZZ_REQUIRE(fuzz::Be16(be) == fuzz::RefSum(copy + skew, n, acc16));
  if (n >= 32) {
    const uint8_t proto = p[0];
    const uint32_t l4 = uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
    const uint16_t s4 = Fold(PseudoSum4(copy + skew, proto, l4 & 0xffff));
    const uint16_t s6 = Fold(PseudoSum6(copy + skew, proto, l4));
    std::memcpy(be, &s4, 2);
    const uint32_t want4 = fuzz::RefSum(copy + skew, 8, proto + (l4 & 0xffff));
    FUZZ_REQUIRE(fuzz::Be16(be) == want4);
    std::memcpy(be, &s6, 2);
    const uint32_t want6 = fuzz::RefSum(copy + skew, 32, proto + (l4 & 0xffff) + (l4 >> 16));
    FUZZ_REQUIRE(fuzz::Be16(be) == want6);
  }
  delete[] copy;
  return 0;
}
