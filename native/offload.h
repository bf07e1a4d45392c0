// Segmentation offloads: virtio_net_hdr parsing, GSO split (TUN read side),
// GRO coalesce (TUN write side) and Internet checksums. Pure functions over
// buffers: no system calls, no policy. The semantics are those of
// src/offload/README.md, which a TypeScript twin (reference/offload/) implements too.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "histogram.h"

namespace tundra::offload {

// ---- virtio_net_hdr (legacy, 10 bytes, little-endian fields) --------------
constexpr size_t kVnetHdrLen = 10;
constexpr uint8_t kVnetNeedsCsum = 1;
constexpr uint8_t kVnetDataValid = 2;
constexpr uint8_t kGsoNone = 0;
constexpr uint8_t kGsoTcpV4 = 1;
constexpr uint8_t kGsoUdp = 3;  // UFO: never accepted
constexpr uint8_t kGsoTcpV6 = 4;
constexpr uint8_t kGsoUdpL4 = 5;
constexpr uint8_t kGsoEcn = 0x80;

// Split drop codes (SplitPacket returns -code).
enum SplitDrop : int {
  kDropVnetHeaderTruncated = 1,
  kDropBadGsoType = 2,
  kDropGsoIpMismatch = 3,
  kDropTruncatedHeader = 4,
  kDropBadCsumStart = 5,
  kDropBadGsoSize = 6,
  kDropTooManySegments = 7,
  kDropPacketTooLarge = 8,
};
constexpr int kSplitDropCount = 8;

// Coalesce flags.
constexpr uint32_t kCoalesceTcp = 1;
constexpr uint32_t kCoalesceUdp = 2;
// The packets' checksums are known good (opened by the AEAD from an authenticated
// peer): not verified before a merge.
constexpr uint32_t kCoalesceTrusted = 4;
// Packets per Coalesce call (its flow tables are fixed-size, per thread).
constexpr size_t kCoalesceMaxPackets = 1024;
// Coalesce stats indices.
constexpr size_t kStatCoalescedItems = 0;
constexpr size_t kStatCoalescedPackets = 1;
constexpr size_t kStatBadChecksum = 2;
// Then a histogram of packets per written item (kHistogramEntries).
constexpr size_t kStatWriteSegmentsHistogram = 3;

constexpr size_t kCoalesceStatCount = kStatWriteSegmentsHistogram + kHistogramEntries;

// tunReadVnet stats indices (OFFLOAD_STAT_NAMES order); drop code -c counts
// at kStatDropBase + c.
constexpr size_t kStatTunPacketsRead = 0;
constexpr size_t kStatTunSuperPackets = 1;
constexpr size_t kStatTunSegments = 2;
constexpr size_t kStatTunChecksumsCompleted = 3;
constexpr size_t kStatDropBase = 3;
// Then a histogram of segments per TUN read (kHistogramEntries).
constexpr size_t kStatReadSegmentsHistogram = 12;
constexpr size_t kOffloadStatCount = kStatReadSegmentsHistogram + kHistogramEntries;

// ---- RFC 1071 checksum ------------------------------------------------------
// Sums are kept in the host's byte order ("native domain"): the one's-
// complement sum of the 16-bit words loaded natively is the byte swap of the
// big-endian sum on a little-endian host, and a folded native-domain value
// memcpy'd into a packet gives the right big-endian bytes. Only constants
// (protocol, lengths) must be converted to the native domain (Be16Native).

// Unfolded sum of n bytes added to acc; the bytes start on an even offset of
// the summed stream. n must be below 16 GiB (no intermediate folding).
uint64_t Sum(const uint8_t* p, size_t n, uint64_t acc);

// Folds a 64-bit accumulator to 16 bits (0 only when every word summed was 0).
inline uint16_t Fold(uint64_t s) {
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffu) + (s >> 16);
  s = (s & 0xffffu) + (s >> 16);
  return static_cast<uint16_t>(s);
}

// A big-endian 16-bit word's value in the native domain.
inline uint64_t Be16Native(uint16_t v) {
  uint8_t b[2] = {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
  uint16_t n;
  std::memcpy(&n, b, 2);
  return n;
}

// Pseudo-header sum (unfolded, native domain). v4: src/dst are 4 bytes each;
// v6: 16 bytes each. l4_len is the L4 header + payload length.
inline uint64_t PseudoSum4(const uint8_t* src_dst, uint8_t proto, uint32_t l4_len) {
  return Sum(src_dst, 8, 0) + Be16Native(proto) + Be16Native(static_cast<uint16_t>(l4_len));
}
inline uint64_t PseudoSum6(const uint8_t* src_dst, uint8_t proto, uint32_t l4_len) {
  return Sum(src_dst, 32, 0) + Be16Native(static_cast<uint16_t>(l4_len >> 16)) +
         Be16Native(static_cast<uint16_t>(l4_len)) + Be16Native(proto);
}

// ---- Raw entry points (usable from other native code) -----------------------

// GSO split of one TUN read (vnet header + packet, in_len bytes): segment j to
// data[offsets[j], offsets[j] + capacity), its length to lengths[j], j <
// max_segments. Returns the segment count (>= 1) or -SplitDrop. The slots
// should have been validated; each offsets[j] is still read once and
// re-checked against data_len at use (a slot that no longer fits ends the
// call with -kDropPacketTooLarge). Nothing outside in[0, in_len) is read and
// nothing outside the slots is written, whatever the packet says.
int SplitPacket(const uint8_t* in, size_t in_len, uint8_t* data, size_t data_len,
                const uint32_t* offsets, uint32_t* lengths, size_t max_segments,
                uint32_t capacity);

// GRO coalesce of a write batch. Packet i is data[offsets[i], +lengths[i]),
// with 10 bytes of header room before it and a slot of `capacity` bytes from
// offsets[i]. On success rewrites offsets[k]/lengths[k] for k < items to the
// items (vnet header + packet) and returns true with *items set. Every
// descriptor is read exactly once, and all are checked before anything is
// written: if one is out of bounds (offset < 10, packet or slot past
// data_len), or count > kCoalesceMaxPackets, nothing is touched and it returns
// false with *bad = that index (count for the count check). stats (may be
// null) has kCoalesceStatCount entries, incremented.
bool Coalesce(uint8_t* data, size_t data_len, uint32_t* offsets, uint32_t* lengths,
              size_t count, uint32_t capacity, uint32_t flags, double* stats, size_t* items,
              size_t* bad);

// Adds offloadSplit, offloadCoalesce, offloadChecksum and the offload constants.
void Init(Napi::Env env, Napi::Object exports);

}  // namespace tundra::offload
