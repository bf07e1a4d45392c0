// GroRecvBatch's cutting of stashed messages into slots, from any state
// (GroStateValid or not: a shared state may change under the call). The fd is
// -1: once the stash is used up the call meets EBADF and returns. Input: k - 1
// (1 byte, modulo 64), count (1 byte, modulo 33), capacity (2 bytes LE,
// modulo 4096), then the state's words (LE; the rest zero). Checked: slots
// hold at most capacity bytes, the state left behind is valid, and a call
// that leaves a stash had a usable one and has filled every slot.
#include <cerrno>
#include <cstring>
#include <vector>

#include "check.h"
#include "udp.h"

using namespace tundra::udp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* in, size_t n) {
  if (n < 4) return 0;
  static std::vector<uint8_t> scratch(kGroMaxMessages * kGroMessageStride, 0x5a);
  const size_t k = in[0] % kGroMaxMessages + 1;
  const size_t count = in[1] % 33;
  const uint32_t capacity = (in[2] | in[3] << 8) % 4096;
  std::vector<uint32_t> state(kGroStateWords, 0);
  std::memcpy(state.data(), in + 4, std::min(n - 4, kGroStateWords * 4));
  // Whether the stash header is usable (the call does not look at the reserved word).
  std::vector<uint32_t> header(state.begin(), state.begin() + kGroStateHeader);
  header[3] = 0;
  const bool usable = GroStateValid(header.data(), k);

  std::vector<uint8_t> data(count * capacity);
  std::vector<uint32_t> offsets(count), lengths(count, 0xffffffff);
  for (size_t i = 0; i < count; i++) offsets[i] = static_cast<uint32_t>(i * capacity);
  std::vector<uint8_t> addrs(count * kAddrStride);
  double stats[kRecvStatCount] = {};
  const GroBuffers gro{scratch.data(), k, state.data()};
  int fatal = 0;
  const size_t filled = GroRecvBatch(-1, data.data(), data.size(), offsets.data(), lengths.data(),
                                     addrs.data(), count, capacity, gro, stats, &fatal);
  FUZZ_REQUIRE(filled <= count);
  FUZZ_REQUIRE(fatal == 0 || fatal == EBADF);
  for (size_t i = 0; i < filled; i++) FUZZ_REQUIRE(lengths[i] <= capacity);
  for (size_t i = filled; i < count; i++) FUZZ_REQUIRE(lengths[i] == 0xffffffff);
  FUZZ_REQUIRE(GroStateValid(state.data(), k));
  if (state[0] != 0) FUZZ_REQUIRE(filled == count && usable);
  return 0;
}
