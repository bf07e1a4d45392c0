// ParseCmsgs (UDP_GRO, SO_RXQ_OVFL, IP_PKTINFO, IPV6_PKTINFO, IP_TOS, IPV6_TCLASS) on any control
// data: kRecvControl bytes as the kernel may leave them, msg_controllen and
// msg_flags from the input. Input: controllen (1 byte, modulo kRecvControl + 1),
// msg_flags (4 bytes LE), then the control bytes (the rest zero).
#include <cstring>
#include <memory>

#include "check.h"
#include "udp.h"

using namespace tundra::udp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* in, size_t n) {
  if (n < 5) return 0;
  const size_t controllen = in[0] % (kRecvControl + 1);
  const int flags = static_cast<int>(uint32_t{in[1]} | uint32_t{in[2]} << 8 |
                                     uint32_t{in[3]} << 16 | uint32_t{in[4]} << 24);
  // The receive buffer's size exactly (heap, so ASan sees a read past it;
  // new aligns it as alignas(cmsghdr) does).
  const std::unique_ptr<uint8_t[]> storage(new uint8_t[kRecvControl]());
  uint8_t* control = storage.get();
  std::memcpy(control, in + 5, std::min(n - 5, kRecvControl));
  msghdr h{};
  h.msg_control = control;
  h.msg_controllen = controllen;
  h.msg_flags = flags;
  double stats[kRecvStatCount] = {};
  stats[kRxqOverflowRaw] = -1;
  const RecvCmsgs c = ParseCmsgs(&h, stats);
  FUZZ_REQUIRE(c.local.family == 0 || c.local.family == 4 || c.local.family == 6);
  FUZZ_REQUIRE(c.ecn <= 3);
  FUZZ_REQUIRE(stats[kCtruncDrops] == ((flags & MSG_CTRUNC) != 0 ? 1 : 0));
  FUZZ_REQUIRE(stats[kRxqOverflowRaw] == (c.has_overflow ? static_cast<double>(c.overflow) : -1));
  FUZZ_REQUIRE(c.gso_size == 0 || controllen >= CMSG_LEN(sizeof(int)));
  (void)ParseCmsgs(&h, nullptr);  // no stats: nothing to write
  return 0;
}
