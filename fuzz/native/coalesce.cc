// Coalesce (GRO of a TUN write batch) on any batch. Input: capacity (2 bytes
// LE, taken modulo the batch's bytes + 64), flags (1 byte: COALESCE_TCP/UDP/TRUSTED),
// then packets: a control byte, a length (2 bytes LE, modulo 2048) and the
// bytes. The control byte's bits let the fuzzer build mergeable packets: 1
// copies the previous packet's first 60 bytes (its headers), 2 sets the TCP
// sequence number to follow the previous packet's, 4 fixes the IP and UDP
// lengths, 8 the IPv4 and L4 checksums. Checked: the bytes outside the items'
// slots are untouched, a packet left alone is unchanged, the items' segment
// counts add up to the packets, and every coalesced item splits (SplitPacket)
// into that many segments, which carry the payloads of as many packets.
#include <cstring>
#include <vector>

#include "check.h"
#include "offload.h"

using namespace tundra::offload;

namespace {

constexpr size_t kGap = 16;  // canary bytes between the slots
constexpr uint8_t kCanary = 0xa5;
constexpr size_t kMaxPackets = 64;

inline uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
inline void PutBe16(uint8_t* p, size_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// IP header length, L4 protocol, or false when not IPv4/IPv6.
bool Headers(const std::vector<uint8_t>& p, size_t* iphlen, uint8_t* proto) {
  if (p.size() >= 20 && p[0] >> 4 == 4) {
    *iphlen = size_t{p[0] & 15u} * 4;
    *proto = p[9];
    return *iphlen >= 20 && *iphlen <= p.size();
  }
  if (p.size() >= 40 && p[0] >> 4 == 6) {
    *iphlen = 40;
    *proto = p[6];
    return true;
  }
  return false;
}

// Where a TCP or UDP packet's payload starts (its size when it has none).
size_t PayloadStart(const std::vector<uint8_t>& p) {
  size_t iphlen;
  uint8_t proto;
  if (!Headers(p, &iphlen, &proto) || (proto != 6 && proto != 17)) return p.size();
  const size_t l4hlen = proto == 17 ? 8 : p.size() >= iphlen + 20 ? static_cast<size_t>(p[iphlen + 12] >> 4) * 4 : 20;
  return std::min(p.size(), iphlen + l4hlen);
}

size_t TcpPayload(const std::vector<uint8_t>& p) {
  size_t iphlen;
  uint8_t proto;
  if (!Headers(p, &iphlen, &proto) || proto != 6) return 0;
  return p.size() - PayloadStart(p);
}

void Fix(std::vector<uint8_t>& p, const std::vector<uint8_t>* prev, uint8_t ctrl) {
  size_t iphlen;
  uint8_t proto;
  const size_t copy = prev != nullptr ? std::min({p.size(), prev->size(), size_t{60}}) : 0;
  if ((ctrl & 1) != 0 && copy > 0) std::memcpy(p.data(), prev->data(), copy);
  if (!Headers(p, &iphlen, &proto)) return;
  const bool v4 = p[0] >> 4 == 4;
  if ((ctrl & 2) != 0 && prev != nullptr && proto == 6 && p.size() >= iphlen + 8 &&
      prev->size() >= iphlen + 8) {
    const uint8_t* s = prev->data() + iphlen + 4;
    uint32_t seq = uint32_t{s[0]} << 24 | uint32_t{s[1]} << 16 | uint32_t{s[2]} << 8 | s[3];
    seq += static_cast<uint32_t>(TcpPayload(*prev));
    for (int k = 0; k < 4; k++) p[iphlen + 4 + k] = static_cast<uint8_t>(seq >> (24 - 8 * k));
  }
  if ((ctrl & 4) != 0) {
    PutBe16(p.data() + (v4 ? 2 : 4), v4 ? p.size() : p.size() - 40);
    if (proto == 17 && p.size() >= iphlen + 8) PutBe16(p.data() + iphlen + 4, p.size() - iphlen);
  }
  if ((ctrl & 8) != 0) {
    if (v4) {
      p[10] = p[11] = 0;
      PutBe16(p.data() + 10, ~fuzz::RefSum(p.data(), iphlen) & 0xffff);
    }
    const size_t at = iphlen + (proto == 6 ? 16 : 6);
    if ((proto == 6 || proto == 17) && p.size() >= at + 2) {
      p[at] = p[at + 1] = 0;
      PutBe16(p.data() + at, ~fuzz::L4Sum(p.data(), v4, proto, iphlen, p.size() - iphlen) & 0xffff);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* in, size_t in_size) {
  if (in_size < 3) return 0;
  const uint32_t flags = in[2] & (kCoalesceTcp | kCoalesceUdp | kCoalesceTrusted);
  std::vector<std::vector<uint8_t>> pkts;
  size_t at = 3, total = 0;
  while (at + 3 <= in_size && pkts.size() < kMaxPackets) {
    const uint8_t ctrl = in[at];
    const size_t len = std::min<size_t>(Le16(in + at + 1) % 2048, in_size - at - 3);
    at += 3;
    pkts.emplace_back(in + at, in + at + len);
    at += len;
    total += len;
    Fix(pkts.back(), pkts.size() > 1 ? &pkts[pkts.size() - 2] : nullptr, ctrl);
  }
  const size_t count = pkts.size();
  const uint32_t capacity = static_cast<uint32_t>(Le16(in) % (total + 64));
  const size_t stride = kGap + kVnetHdrLen + capacity;
  // Slot i: vnet header room at offsets[i] - 10, packet and capacity from offsets[i].
  std::vector<uint8_t> data(count * stride, kCanary);
  std::vector<uint32_t> offsets(count), lengths(count);
  for (size_t i = 0; i < count; i++) {
    offsets[i] = static_cast<uint32_t>(i * stride + kGap + kVnetHdrLen);
    lengths[i] = static_cast<uint32_t>(pkts[i].size());
    if (pkts[i].size() > capacity) return 0;  // the glue rejects such a batch
    if (!pkts[i].empty()) std::memcpy(data.data() + offsets[i], pkts[i].data(), pkts[i].size());
  }
  const std::vector<uint8_t> before = data;
  double stats[kCoalesceStatCount] = {};
  size_t items = 0, bad = 0;
  FUZZ_REQUIRE(Coalesce(data.data(), data.size(), offsets.data(), lengths.data(), count, capacity,
                        flags, stats, &items, &bad));
  FUZZ_REQUIRE(items <= count && (items > 0) == (count > 0));

  std::vector<bool> head(count, false), used(count, false);
  // Packets left alone are no coalesced item's.
  for (size_t k = 0; k < items; k++) {
    if (data[offsets[k] + 1] == kGsoNone) used[std::min(offsets[k] / stride, count - 1)] = true;
  }
  size_t segments = 0, coalesced_items = 0, coalesced_packets = 0;
  for (size_t k = 0; k < items; k++) {
    const size_t slot = offsets[k] / stride;
    FUZZ_REQUIRE(slot < count && offsets[k] == slot * stride + kGap && !head[slot]);
    head[slot] = true;
    FUZZ_REQUIRE(lengths[k] >= kVnetHdrLen && lengths[k] - kVnetHdrLen <= capacity);
    const uint8_t* item = data.data() + offsets[k];
    if (item[1] == kGsoNone) {
      const uint8_t zero[kVnetHdrLen] = {};
      FUZZ_REQUIRE(std::memcmp(item, zero, kVnetHdrLen) == 0);
      FUZZ_REQUIRE(lengths[k] - kVnetHdrLen == pkts[slot].size());
      FUZZ_REQUIRE(fuzz::Equal(item + kVnetHdrLen, pkts[slot].data(), pkts[slot].size()));
      segments++;
      continue;
    }
    const size_t hdr = Le16(item + 2), gso = Le16(item + 4);
    const size_t len = lengths[k] - kVnetHdrLen;
    FUZZ_REQUIRE(gso > 0 && len > hdr && len <= 65535);
    const size_t n = (len - hdr + gso - 1) / gso;
    FUZZ_REQUIRE(n > 1);
    segments += n;
    coalesced_items++;
    coalesced_packets += n;
    // What the kernel does with it: the split must give the same segments.
    std::vector<uint8_t> out(n * capacity);
    std::vector<uint32_t> out_offsets(n), out_lengths(n);
    for (size_t j = 0; j < n; j++) out_offsets[j] = static_cast<uint32_t>(j * capacity);
    FUZZ_REQUIRE(SplitPacket(item, lengths[k], out.data(), out.size(), out_offsets.data(),
                             out_lengths.data(), n, capacity) == static_cast<int>(n));
    // Each segment carries the payload of one of the packets, each packet's once.
    for (size_t j = 0; j < n; j++) {
      const uint8_t* seg = out.data() + out_offsets[j] + hdr;
      const size_t seg_payload = out_lengths[j] - hdr;
      bool found = false;
      for (size_t i = 0; i < count && !found; i++) {
        const size_t start = PayloadStart(pkts[i]);
        found = !used[i] && pkts[i].size() - start == seg_payload &&
                fuzz::Equal(pkts[i].data() + start, seg, seg_payload);
        used[i] = used[i] || found;
      }
      FUZZ_REQUIRE(found);
    }
  }
  FUZZ_REQUIRE(segments == count);
  FUZZ_REQUIRE(stats[kStatCoalescedItems] == coalesced_items &&
               stats[kStatCoalescedPackets] == coalesced_packets);
  // Only the items' slots were written.
  for (size_t i = 0; i < count; i++) {
    const size_t slot_start = i * stride + kGap;
    FUZZ_REQUIRE(std::memcmp(data.data() + i * stride, before.data() + i * stride, kGap) == 0);
    if (!head[i]) {
      FUZZ_REQUIRE(std::memcmp(data.data() + slot_start, before.data() + slot_start,
                               stride - kGap) == 0);
    }
  }
  return 0;
}
