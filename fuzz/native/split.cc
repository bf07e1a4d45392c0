// SplitPacket (vnet header parsing, GSO split, checksum completion) on any TUN
// read. Input: capacity (2 bytes LE), max_segments - 1 (1 byte), then the read
// (vnet header + packet). capacity is taken modulo the read's length + 32 (only
// how it compares with the packet matters), max_segments up to 64: small
// buffers keep it fast. Checked: nothing outside the written segments
// changes; a drop writes nothing; every segment fits its slot, carries right
// lengths and checksums, and the segments' payloads are the packet's payload.
#include <cstring>
#include <vector>

#include "check.h"
#include "offload.h"

using namespace tundra::offload;

namespace {

constexpr size_t kGap = 16;  // canary bytes before and between the slots
constexpr uint8_t kCanary = 0xa5;

inline uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

void CheckGso(const uint8_t* pkt, size_t len, const uint8_t* vh, const uint8_t* data,
              const uint32_t* offsets, const uint32_t* lengths, int n) {
  const uint8_t* first = data + offsets[0];
  const bool v4 = first[0] >> 4 == 4;
  const size_t iphlen = v4 ? size_t{first[0] & 15u} * 4 : 40;
  const bool tcp = vh[1] != kGsoUdpL4;
  const size_t l4hlen = tcp ? static_cast<size_t>(first[iphlen + 12] >> 4) * 4 : 8;
  const size_t hdr = iphlen + l4hlen;
  const size_t gso = Le16(vh + 4);
  size_t payload = 0;
  for (int j = 0; j < n; j++) {
    const uint8_t* out = data + offsets[j];
    const size_t seg = lengths[j];
    FUZZ_REQUIRE(seg > hdr);
    FUZZ_REQUIRE(j + 1 == n ? seg - hdr <= gso : seg - hdr == gso);
    FUZZ_REQUIRE(std::memcmp(out + hdr, pkt + hdr + payload, seg - hdr) == 0);
    payload += seg - hdr;
    if (v4) {
      FUZZ_REQUIRE(fuzz::Be16(out + 2) == seg);
      FUZZ_REQUIRE(fuzz::RefSum(out, iphlen) == 0xffff);
    } else {
      FUZZ_REQUIRE(fuzz::Be16(out + 4) == seg - 40);
    }
    if (!tcp) FUZZ_REQUIRE(fuzz::Be16(out + iphlen + 4) == seg - iphlen);
    FUZZ_REQUIRE(fuzz::L4Sum(out, v4, tcp ? 6 : 17, iphlen, seg - iphlen) == 0xffff);
  }
  FUZZ_REQUIRE(payload == len - hdr);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* in, size_t in_size) {
  if (in_size < 3) return 0;
  const uint8_t* read = in + 3;
  const size_t read_len = in_size - 3;
  const uint32_t capacity = static_cast<uint32_t>(Le16(in) % (read_len + 32));
  const size_t max_segments = size_t{in[2]} % 64 + 1;

  const size_t stride = capacity + kGap;
  const size_t data_len = kGap + max_segments * stride - kGap;
  std::vector<uint8_t> data(data_len, kCanary);
  std::vector<uint32_t> offsets(max_segments), lengths(max_segments, 0);
  for (size_t j = 0; j < max_segments; j++) offsets[j] = static_cast<uint32_t>(kGap + j * stride);
  // The read in a buffer of its own size, so a read past it is caught.
  std::vector<uint8_t> input(read, read + read_len);

  const int n = SplitPacket(input.data(), input.size(), data.data(), data.size(), offsets.data(),
                            lengths.data(), max_segments, capacity);
  FUZZ_REQUIRE(n >= -kSplitDropCount && n != 0 && n <= static_cast<int>(max_segments));
  // Bytes outside the segments written are untouched (all of them after a drop).
  const std::vector<uint8_t> canary(stride, kCanary);
  FUZZ_REQUIRE(std::memcmp(data.data(), canary.data(), kGap) == 0);
  for (size_t j = 0; j < max_segments; j++) {
    const size_t used = static_cast<int>(j) < n ? lengths[j] : 0;
    FUZZ_REQUIRE(used <= capacity);
    const size_t rest = j + 1 < max_segments ? stride - used : capacity - used;
    FUZZ_REQUIRE(std::memcmp(data.data() + offsets[j] + used, canary.data(), rest) == 0);
  }
  if (n < 0) return 0;

  const uint8_t* vh = read;
  const uint8_t* pkt = read + kVnetHdrLen;
  const size_t len = read_len - kVnetHdrLen;
  if (vh[1] != kGsoNone) {
    CheckGso(pkt, len, vh, data.data(), offsets.data(), lengths.data(), n);
    return 0;
  }
  // No GSO: the packet as it is, with its checksum completed when asked.
  FUZZ_REQUIRE(n == 1 && lengths[0] == len);
  const uint8_t* out = data.data() + offsets[0];
  if ((vh[0] & kVnetNeedsCsum) == 0) {
    FUZZ_REQUIRE(std::memcmp(out, pkt, len) == 0);
    return 0;
  }
  const size_t start = Le16(vh + 6), at = start + Le16(vh + 8);
  FUZZ_REQUIRE(std::memcmp(out, pkt, at) == 0 && std::memcmp(out + at + 2, pkt + at + 2, len - at - 2) == 0);
  uint16_t want = static_cast<uint16_t>(~fuzz::RefSum(pkt + start, len - start));
  if (want == 0) want = 0xffff;
  FUZZ_REQUIRE(fuzz::Be16(out + at) == want);
  return 0;
}
