// GSO split and GRO coalesce over bare IPv4/IPv6 packets (src/offload/README.md).
//
// Both are written against buffers another thread may change (SharedArrayBuffer):
// every descriptor and every header field that decides a bound is read once into a
// local, checked there, and only the local is used afterwards. Packet bytes that do
// not decide bounds (addresses, payload) are simply copied or summed as they are.
#include "offload.h"

#include <cmath>
#include <string>

#include "batch_args.h"
#include "cpu.h"
#include "napi_args.h"

namespace tundra::offload {

// ---- checksum -----------------------------------------------------------------

namespace {

// 32-bit words into a 64-bit accumulator: no carry to propagate until the
// fold (2^32 words would be needed to overflow). The compiler vectorizes the
// loop for the target of the function it is inlined into.
__attribute__((always_inline)) inline uint64_t SumLoop(const uint8_t* p, size_t n, uint64_t acc) {
  uint64_t s = acc;
  const size_t words = n / 4;
  for (size_t i = 0; i < words; i++) {
    uint32_t w;
    std::memcpy(&w, p + 4 * i, 4);
    s += w;
  }
  p += words * 4;
  n &= 3;
  if (n >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    s += w;
    p += 2;
    n -= 2;
  }
  if (n != 0) {
    // The odd last byte is the high byte of a zero-padded big-endian word.
    const uint8_t b[2] = {p[0], 0};
    uint16_t w;
    std::memcpy(&w, b, 2);
    s += w;
  }
  return s;
}

uint64_t SumPortable(const uint8_t* p, size_t n, uint64_t acc) { return SumLoop(p, n, acc); }

// Four 64-bit lanes instead of SSE2's two: about 1.7x on this project's machine
// (in cache, 1.4-64 KB).
__attribute__((target("avx2"))) uint64_t SumAvx2(const uint8_t* p, size_t n, uint64_t acc) {
  return SumLoop(p, n, acc);
}

}  // namespace

uint64_t Sum(const uint8_t* p, size_t n, uint64_t acc) {
  return cpu::kHasAvx2 ? SumAvx2(p, n, acc) : SumPortable(p, n, acc);
}

namespace {

// ---- byte access ----------------------------------------------------------------

inline uint16_t Rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Rd32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline uint16_t Rd16Le(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
inline void Wr16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void Wr32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline void Wr16Le(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
// Stores a native-domain 16-bit sum: its bytes are the big-endian value.
inline void StoreSum(uint8_t* p, uint16_t native) { std::memcpy(p, &native, 2); }

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpPsh = 0x08;
constexpr uint8_t kTcpAck = 0x10;
constexpr uint8_t kTcpCwr = 0x80;

// IPv4 header checksum over hlen bytes, written at p[10..12).
inline void SetIpv4Checksum(uint8_t* p, size_t hlen) {
  p[10] = p[11] = 0;
  StoreSum(p + 10, static_cast<uint16_t>(~Fold(Sum(p, hlen, 0))));
}

inline uint64_t AddressSum(const uint8_t* ip, bool v4) {
  return v4 ? Sum(ip + 12, 8, 0) : Sum(ip + 8, 32, 0);
}

// Pseudo-header sum from the address sum: protocol and L4 length, a u16 for
// IPv4 and a u32 (two words) for IPv6.
inline uint64_t PseudoFromAddresses(uint64_t addr_sum, bool v4, uint8_t proto, uint32_t l4_len) {
  const uint64_t len_sum = v4 ? Be16Native(static_cast<uint16_t>(l4_len))
                              : Be16Native(static_cast<uint16_t>(l4_len >> 16)) +
                                    Be16Native(static_cast<uint16_t>(l4_len));
  return addr_sum + Be16Native(proto) + len_sum;
}

}  // namespace

// ---- split ----------------------------------------------------------------------

int SplitPacket(const uint8_t* in, size_t in_len, uint8_t* data, size_t data_len,
                const uint32_t* offsets, uint32_t* lengths, size_t max_segments,
                uint32_t capacity) {
  if (in_len <= kVnetHdrLen) return -kDropVnetHeaderTruncated;
  uint8_t vh[kVnetHdrLen];
  std::memcpy(vh, in, kVnetHdrLen);
  const uint8_t vflags = vh[0];
  const uint8_t gso = vh[1];
  const size_t gso_size = Rd16Le(vh + 4);
  const size_t csum_start = Rd16Le(vh + 6);
  const size_t csum_offset = Rd16Le(vh + 8);
  const uint8_t* pkt = in + kVnetHdrLen;
  const size_t len = in_len - kVnetHdrLen;

  if (gso != kGsoNone && gso != kGsoTcpV4 && gso != kGsoTcpV6 && gso != kGsoUdpL4) {
    return -kDropBadGsoType;
  }

  if (gso == kGsoNone) {
    const bool csum = (vflags & kVnetNeedsCsum) != 0;
    if (csum && csum_start + csum_offset + 2 > len) return -kDropBadCsumStart;
    if (len > capacity) return -kDropPacketTooLarge;
    if (max_segments < 1) return -kDropTooManySegments;
    const uint32_t off = args::Load(offsets, 0);
    if (uint64_t{off} + capacity > data_len) return -kDropPacketTooLarge;
    uint8_t* out = data + off;
    std::memcpy(out, pkt, len);
    if (csum) {
      uint16_t c = static_cast<uint16_t>(~Fold(Sum(out + csum_start, len - csum_start, 0)));
      if (c == 0) c = 0xffff;
      StoreSum(out + csum_start + csum_offset, c);
    }
    lengths[0] = static_cast<uint32_t>(len);
    return 1;
  }

  // GSO: parse the IP and L4 headers once, into locals.
  const uint8_t b0 = pkt[0];
  const unsigned version = b0 >> 4;
  if (version != 4 && version != 6) return -kDropGsoIpMismatch;
  const bool v4 = version == 4;
  if ((gso == kGsoTcpV4 && !v4) || (gso == kGsoTcpV6 && v4)) return -kDropGsoIpMismatch;
  const bool tcp = gso != kGsoUdpL4;
  const uint8_t proto = tcp ? kProtoTcp : kProtoUdp;
  // A protocol byte past the end of the packet is not the wanted protocol.
  const size_t proto_at = v4 ? 9 : 6;
  if (len <= proto_at || pkt[proto_at] != proto) return -kDropGsoIpMismatch;

  size_t iphlen = 40;
  if (v4) {
    if (len < 20) return -kDropTruncatedHeader;
    iphlen = size_t{b0 & 15u} * 4;
    if (iphlen < 20 || len < iphlen) return -kDropTruncatedHeader;
  } else if (len < 40) {
    return -kDropTruncatedHeader;
  }
  size_t l4hlen = 8;
  if (tcp) {
    if (len <= iphlen + 12) return -kDropTruncatedHeader;
    l4hlen = static_cast<size_t>(pkt[iphlen + 12] >> 4) * 4;
    if (l4hlen < 20 || len < iphlen + l4hlen) return -kDropTruncatedHeader;
  } else if (len < iphlen + 8) {
    return -kDropTruncatedHeader;
  }
  if (csum_start != iphlen) return -kDropBadCsumStart;
  const size_t hdr_len = iphlen + l4hlen;  // the kernel's hdr_len is never used
  const size_t g = gso_size;
  const size_t payload = len - hdr_len;
  if (g == 0 || payload == 0 || g > payload) return -kDropBadGsoSize;
  const size_t n = (payload + g - 1) / g;
  if (n > max_segments) return -kDropTooManySegments;
  if (hdr_len + g > capacity) return -kDropPacketTooLarge;  // the first segment is the longest

  // A private copy of the headers is the template of every segment.
  uint8_t h[120];
  std::memcpy(h, pkt, hdr_len);
  const uint8_t* body = pkt + hdr_len;
  const uint32_t id0 = v4 ? Rd16(h + 4) : 0;
  const uint32_t seq0 = tcp ? Rd32(h + iphlen + 4) : 0;
  const uint8_t tcp_flags0 = tcp ? h[iphlen + 13] : 0;
  const size_t csum_at = iphlen + (tcp ? 16 : 6);
  const uint64_t addr_sum = AddressSum(h, v4);

  for (size_t i = 0; i < n; i++) {
    const uint32_t off = args::Load(offsets, i);
    // Changed under us since validation: stop rather than overrun.
    if (uint64_t{off} + capacity > data_len) return -kDropPacketTooLarge;
    const size_t seg_payload = i + 1 < n ? g : payload - i * g;
    const size_t seg_len = hdr_len + seg_payload;
    const uint32_t l4_len = static_cast<uint32_t>(seg_len - iphlen);
    uint8_t* out = data + off;
    std::memcpy(out, h, hdr_len);
    std::memcpy(out + hdr_len, body + i * g, seg_payload);
    if (v4) {
      Wr16(out + 2, static_cast<uint32_t>(seg_len));
      Wr16(out + 4, (id0 + static_cast<uint32_t>(i)) & 0xffff);
      SetIpv4Checksum(out, iphlen);
    } else {
      Wr16(out + 4, static_cast<uint32_t>(seg_len - 40));
    }
    uint8_t* l4 = out + iphlen;
    if (tcp) {
      Wr32(l4 + 4, seq0 + static_cast<uint32_t>(i * g));
      uint8_t f = tcp_flags0;
      if (i + 1 < n) f = static_cast<uint8_t>(f & ~(kTcpFin | kTcpPsh));
      if (i != 0) f = static_cast<uint8_t>(f & ~kTcpCwr);
      l4[13] = f;
    } else {
      Wr16(l4 + 4, l4_len);
    }
    out[csum_at] = out[csum_at + 1] = 0;
    uint16_t c = static_cast<uint16_t>(
        ~Fold(Sum(l4, l4_len, PseudoFromAddresses(addr_sum, v4, proto, l4_len))));
    if (!tcp && c == 0) c = 0xffff;
    StoreSum(out + csum_at, c);
    lengths[i] = static_cast<uint32_t>(seg_len);
  }
  return static_cast<int>(n);
}

// ---- coalesce -------------------------------------------------------------------

namespace {

constexpr uint16_t kNone = 0xffff;
constexpr size_t kBuckets = 4096;  // power of two, >= 2 * kCoalesceMaxPackets
constexpr size_t kKeyLen = 44;
constexpr uint32_t kUdpMaxSegments = 64;
constexpr uint32_t kMaxIpLength = 65535;

struct Pkt {
  uint32_t off, len;
  uint32_t payload;
  uint32_t seq;   // TCP
  uint16_t next;  // next member of its item
  uint8_t iphlen, l4hlen;
  uint8_t proto;  // kProtoTcp, kProtoUdp, or 0: not a candidate
  bool v4;
  bool psh;
};

struct Item {
  uint16_t head, tail;  // first and last member (packet indices)
  uint16_t prev;        // older item of the same TCP flow, or kNone
  uint16_t segments;
  uint32_t seq;      // TCP: the head's sequence number
  uint32_t gso;      // G: the head's payload length
  uint32_t payload;  // P: all members' payload
  bool psh, verified, known_bad, in_flow;
};

struct Flow {
  uint8_t key[kKeyLen];
  uint16_t last;  // newest item of the flow (TCP: head of the prev chain)
};

struct Bucket {
  uint32_t gen;
  uint16_t flow;
};

// Per-thread scratch: zero-initialised, never freed, nothing allocated per call.
struct Scratch {
  Pkt pkts[kCoalesceMaxPackets];
  Item items[kCoalesceMaxPackets];
  Flow flows[kCoalesceMaxPackets];
  Bucket buckets[kBuckets];
  uint32_t gen;
};
thread_local Scratch tls_scratch;

// Fills k (from p, k.len bytes) when the packet is a GRO candidate for the
// enabled protocols; k.proto = 0 otherwise.
void Classify(const uint8_t* p, Pkt* k, uint32_t flags) {
  k->proto = 0;
  k->payload = 0;
  k->seq = 0;
  k->psh = false;
  const uint32_t len = k->len;
  if (len < 20) return;
  const uint8_t b0 = p[0];
  uint8_t proto = 0;
  uint32_t iphlen = 0;
  if (b0 >> 4 == 4) {
    if ((b0 & 15) != 5 || Rd16(p + 2) != len || (Rd16(p + 6) & 0x3fff) != 0) return;
    proto = p[9];
    iphlen = 20;
    k->v4 = true;
  } else if (b0 >> 4 == 6) {
    if (len < 40 || Rd16(p + 4) != len - 40) return;
    proto = p[6];
    iphlen = 40;
    k->v4 = false;
  } else {
    return;
  }
  const uint8_t* l4 = p + iphlen;
  if (proto == kProtoTcp && (flags & kCoalesceTcp) != 0) {
    if (len < iphlen + 20) return;  // 40 (v4) / 60 (v6)
    const uint32_t doff = static_cast<uint32_t>(l4[12] >> 4) * 4;
    if (doff < 20 || doff > len - iphlen) return;
    const uint32_t payload = len - iphlen - doff;
    if (payload == 0) return;
    const uint8_t f = l4[13];
    if (f != kTcpAck && f != (kTcpAck | kTcpPsh)) return;
    k->l4hlen = static_cast<uint8_t>(doff);
    k->payload = payload;
    k->seq = Rd32(l4 + 4);
    k->psh = f != kTcpAck;
  } else if (proto == kProtoUdp && (flags & kCoalesceUdp) != 0) {
    if (len < iphlen + 8) return;  // 28 (v4) / 48 (v6)
    if (k->v4 && Rd16(l4 + 6) == 0) return;
    if (Rd16(l4 + 4) != len - iphlen) return;
    const uint32_t payload = len - iphlen - 8;
    if (payload == 0) return;
    k->l4hlen = 8;
    k->payload = payload;
    k->seq = 0;
    k->psh = false;
  } else {
    return;
  }
  k->iphlen = static_cast<uint8_t>(iphlen);
  k->proto = proto;
}

void MakeKey(const uint8_t* p, const Pkt& k, uint8_t key[kKeyLen]) {
  std::memset(key, 0, kKeyLen);
  key[0] = k.proto;
  key[1] = k.v4 ? 4 : 6;
  const uint8_t* l4 = p + k.iphlen;
  if (k.proto == kProtoTcp) std::memcpy(key + 4, l4 + 8, 4);  // ack number
  std::memcpy(key + 8, l4, 4);                                 // ports
  if (k.v4) {
    std::memcpy(key + 12, p + 12, 4);
    std::memcpy(key + 28, p + 16, 4);
  } else {
    std::memcpy(key + 12, p + 8, 32);
  }
}

uint32_t HashKey(const uint8_t key[kKeyLen]) {
  uint64_t h = 0x6a09e667f3bcc909ull;
  for (size_t i = 0; i < 40; i += 8) {
    uint64_t w;
    std::memcpy(&w, key + i, 8);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  uint32_t t;
  std::memcpy(&t, key + 40, 4);
  h = (h ^ t) * 0x9e3779b97f4a7c15ull;
  return static_cast<uint32_t>(h >> 32);
}

// The flow for key (created, with no item yet, when new).
Flow* FindFlow(Scratch& s, size_t* flow_count, const uint8_t key[kKeyLen]) {
  size_t b = HashKey(key) & (kBuckets - 1);
  for (;;) {
    Bucket& bucket = s.buckets[b];
    if (bucket.gen != s.gen) {
      Flow& f = s.flows[*flow_count];
      bucket.gen = s.gen;
      bucket.flow = static_cast<uint16_t>((*flow_count)++);
      std::memcpy(f.key, key, kKeyLen);
      f.last = kNone;
      return &f;
    }
    Flow& f = s.flows[bucket.flow];
    if (std::memcmp(f.key, key, kKeyLen) == 0) return &f;
    b = (b + 1) & (kBuckets - 1);
  }
}

// IPv4: ToS, flags/fragment field, TTL; IPv6: version/class/flow label, hop limit.
inline bool IpCompatible(const uint8_t* a, const uint8_t* b, bool v4) {
  if (v4) return a[1] == b[1] && a[6] == b[6] && a[7] == b[7] && a[8] == b[8];
  return std::memcmp(a, b, 4) == 0 && a[7] == b[7];
}

// IPv4 header checksum (v4) and L4 checksum both valid.
bool Valid(const uint8_t* p, const Pkt& k) {
  if (k.v4 && Fold(Sum(p, 20, 0)) != 0xffff) return false;
  const uint32_t l4_len = k.len - k.iphlen;
  const uint64_t pseudo = PseudoFromAddresses(AddressSum(p, k.v4), k.v4, k.proto, l4_len);
  return Fold(Sum(p + k.iphlen, l4_len, pseudo)) == 0xffff;
}

}  // namespace

bool Coalesce(uint8_t* data, size_t data_len, uint32_t* offsets, uint32_t* lengths,
              size_t count, uint32_t capacity, uint32_t flags, double* stats, size_t* items_out,
              size_t* bad) {
  const bool trusted = (flags & kCoalesceTrusted) != 0;
  auto valid = [&](const uint8_t* p, const Pkt& k) { return trusted || Valid(p, k); };
  if (count > kCoalesceMaxPackets) {
    *bad = count;
    return false;
  }
  Scratch& s = tls_scratch;
  // Every descriptor once, all checked before anything is written.
  for (size_t i = 0; i < count; i++) {
    const uint32_t off = args::Load(offsets, i);
    const uint32_t len = args::Load(lengths, i);
    if (off < kVnetHdrLen || uint64_t{off} + len > data_len ||
        uint64_t{off} + capacity > data_len) {
      *bad = i;
      return false;
    }
    s.pkts[i].off = off;
    s.pkts[i].len = len;
  }
  if (++s.gen == 0) {  // wrapped: forget every bucket
    std::memset(s.buckets, 0, sizeof s.buckets);
    s.gen = 1;
  }
  size_t item_count = 0;
  size_t flow_count = 0;
  double bad_checksums = 0;

  auto new_item = [&](uint16_t pkt) -> Item& {
    Item& it = s.items[item_count++];
    const Pkt& k = s.pkts[pkt];
    it.head = it.tail = pkt;
    it.prev = kNone;
    it.segments = 1;
    it.seq = k.seq;
    it.gso = k.payload;
    it.payload = k.payload;
    it.psh = k.psh;
    it.verified = it.known_bad = it.in_flow = false;
    return it;
  };

  for (size_t i = 0; i < count; i++) {
    const uint16_t idx = static_cast<uint16_t>(i);
    Pkt& k = s.pkts[i];
    k.next = kNone;
    const uint8_t* p = data + k.off;
    Classify(p, &k, flags);
    if (k.proto == 0) {
      new_item(idx);
      continue;
    }
    uint8_t key[kKeyLen];
    MakeKey(p, k, key);
    Flow* flow = FindFlow(s, &flow_count, key);
    const uint32_t hdr_len = uint32_t{k.iphlen} + k.l4hlen;

    if (k.proto == kProtoTcp) {
      bool done = false;
      for (uint16_t at = flow->last; at != kNone && !done; at = s.items[at].prev) {
        Item& it = s.items[at];
        if (!it.in_flow) continue;
        const Pkt& hk = s.pkts[it.head];
        const uint8_t* hp = data + hk.off;
        if (!IpCompatible(p, hp, k.v4) || hk.l4hlen != k.l4hlen ||
            std::memcmp(p + k.iphlen + 20, hp + hk.iphlen + 20, k.l4hlen - 20u) != 0) {
          continue;
        }
        bool append;
        if (k.seq == it.seq + it.payload) {
          if (it.psh || it.payload % it.gso != 0 || k.payload > it.gso) continue;
          append = true;
        } else if (k.seq + k.payload == it.seq) {
          if (k.psh || k.payload < it.gso || (k.payload > it.gso && it.segments > 1)) continue;
          append = false;
        } else {
          continue;
        }
        const uint64_t merged = uint64_t{hdr_len} + it.payload + k.payload;
        if (merged > kMaxIpLength || merged > capacity) continue;
        if (it.segments == 1 && !it.verified) {
          if (!valid(hp, hk)) {
            bad_checksums++;
            it.in_flow = false;  // stays an item, written as is
            continue;
          }
          it.verified = true;
        }
        done = true;
        if (!valid(p, k)) {
          bad_checksums++;
          new_item(idx);  // its own item, not in the flow
          break;
        }
        if (append) {
          s.pkts[it.tail].next = idx;
          it.tail = idx;
          if (k.psh) it.psh = true;
        } else {
          k.next = it.head;
          it.head = idx;
          it.gso = k.payload;
          it.seq = k.seq;
        }
        it.payload += k.payload;
        it.segments++;
      }
      if (!done) {
        Item& it = new_item(idx);
        it.in_flow = true;
        it.prev = flow->last;
        flow->last = static_cast<uint16_t>(item_count - 1);
      }
      continue;
    }

    // UDP: only the flow's last item is tried.
    bool known_bad = false;
    if (flow->last != kNone) {
      Item& it = s.items[flow->last];
      const Pkt& hk = s.pkts[it.head];
      const uint8_t* hp = data + hk.off;
      const uint64_t merged = uint64_t{hdr_len} + it.payload + k.payload;
      if (IpCompatible(p, hp, k.v4) && k.payload <= it.gso && it.payload % it.gso == 0 &&
          it.segments < kUdpMaxSegments && merged <= kMaxIpLength && merged <= capacity) {
        bool usable = true;
        if (it.segments == 1 && !it.verified) {
          if (it.known_bad) {
            usable = false;
          } else if (!valid(hp, hk)) {
            bad_checksums++;
            usable = false;
          } else {
            it.verified = true;
          }
        }
        if (usable) {
          if (!valid(p, k)) {
            bad_checksums++;
            known_bad = true;
          } else {
            s.pkts[it.tail].next = idx;
            it.tail = idx;
            it.payload += k.payload;
            it.segments++;
            continue;
          }
        }
      }
    }
    Item& it = new_item(idx);
    it.known_bad = known_bad;
    flow->last = static_cast<uint16_t>(item_count - 1);
  }

  // Finalize, in creation order; offsets/lengths[k] are rewritten only now
  // (every packet's descriptor was read above).
  double coalesced_items = 0, coalesced_packets = 0;
  for (size_t n = 0; n < item_count; n++) {
    const Item& it = s.items[n];
    const Pkt& hk = s.pkts[it.head];
    uint8_t* head = data + hk.off;
    uint8_t* vh = head - kVnetHdrLen;
    uint32_t total = hk.len;
    if (stats != nullptr) Observe(stats + kStatWriteSegmentsHistogram, it.segments);
    if (it.segments > 1) {
      coalesced_items++;
      coalesced_packets += it.segments;
      for (uint16_t m = hk.next; m != kNone; m = s.pkts[m].next) {
        const Pkt& mk = s.pkts[m];
        std::memcpy(head + total, data + mk.off + mk.iphlen + mk.l4hlen, mk.payload);
        total += mk.payload;
      }
      const bool tcp = hk.proto == kProtoTcp;
      const uint32_t iphlen = hk.iphlen;
      const uint32_t l4_len = total - iphlen;
      vh[0] = kVnetNeedsCsum;
      vh[1] = tcp ? (hk.v4 ? kGsoTcpV4 : kGsoTcpV6) : kGsoUdpL4;
      Wr16Le(vh + 2, iphlen + hk.l4hlen);
      Wr16Le(vh + 4, it.gso);
      Wr16Le(vh + 6, iphlen);
      Wr16Le(vh + 8, tcp ? 16 : 6);
      if (hk.v4) {
        Wr16(head + 2, total);
        SetIpv4Checksum(head, iphlen);
      } else {
        Wr16(head + 4, l4_len);
      }
      uint8_t* l4 = head + iphlen;
      if (tcp) {
        if (it.psh) l4[13] |= kTcpPsh;
      } else {
        Wr16(l4 + 4, l4_len);
      }
      StoreSum(l4 + (tcp ? 16 : 6),
               Fold(PseudoFromAddresses(AddressSum(head, hk.v4), hk.v4, hk.proto, l4_len)));
    } else {
      std::memset(vh, 0, kVnetHdrLen);
    }
    offsets[n] = hk.off - static_cast<uint32_t>(kVnetHdrLen);
    lengths[n] = static_cast<uint32_t>(kVnetHdrLen) + total;
  }
  if (stats != nullptr) {
    stats[kStatCoalescedItems] += coalesced_items;
    stats[kStatCoalescedPackets] += coalesced_packets;
    stats[kStatBadChecksum] += bad_checksums;
  }
  *items_out = item_count;
  return true;
}

// ---- N-API glue -------------------------------------------------------------------

namespace {

using args::GetArray;
using args::GetInt;
using args::GetUint32;
using args::Load;
using args::Packets;
using args::ThrowRange;
using args::ThrowType;
using args::View;

const char* const kOffloadStatNames[kOffloadStatCount] = {
    "tun_packets_read",       "tun_super_packets",        "tun_segments",
    "tun_checksums_completed", "drop_vnet_header_truncated", "drop_bad_gso_type",
    "drop_gso_ip_mismatch",   "drop_truncated_header",    "drop_bad_csum_start",
    "drop_bad_gso_size",      "drop_too_many_segments",   "drop_packet_too_large",
    "tun_read_segments_bucket_1", "tun_read_segments_bucket_2", "tun_read_segments_bucket_4",
    "tun_read_segments_bucket_8", "tun_read_segments_bucket_16", "tun_read_segments_bucket_32",
    "tun_read_segments_bucket_64", "tun_read_segments_bucket_inf", "tun_read_segments_sum",
};
const char* const kSplitDropNames[kSplitDropCount] = {
    "vnet_header_truncated", "bad_gso_type",      "gso_ip_mismatch",   "truncated_header",
    "bad_csum_start",        "bad_gso_size",      "too_many_segments", "packet_too_large",
};
const char* const kCoalesceStatNames[kCoalesceStatCount] = {
    "coalesced_items", "coalesced_packets", "bad_checksum",
    "tun_write_segments_bucket_1", "tun_write_segments_bucket_2", "tun_write_segments_bucket_4",
    "tun_write_segments_bucket_8", "tun_write_segments_bucket_16", "tun_write_segments_bucket_32",
    "tun_write_segments_bucket_64", "tun_write_segments_bucket_inf", "tun_write_segments_sum"};

// offloadSplit(input, data, offsets, lengths, maxSegments, capacity) -> count | -code
Napi::Value SplitJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  const char* fn = "offloadSplit";
  View input;
  Packets p;
  if (!GetArray(env, info[0], napi_uint8_array, fn, "input", "Uint8Array", &input) ||
      !args::GetPackets(info, 1, fn, &p)) {
    return Napi::Value();
  }
  const size_t rows = p.offsets.length < p.lengths.length ? p.offsets.length : p.lengths.length;
  double max_segments = 0;
  if (!GetInt(env, info[4], fn, "maxSegments", 1, static_cast<double>(rows), &max_segments)) {
    return Napi::Value();
  }
  uint32_t capacity = 0;
  if (!GetUint32(env, info[5], fn, "capacity", &capacity)) return Napi::Value();
  const size_t max = static_cast<size_t>(max_segments);
  if (!args::CheckSlots(env, fn, p, capacity, max)) return Napi::Value();
  const int r = SplitPacket(input.data, input.length, p.data.data, p.data.length, p.Offsets(),
                            p.Lengths(), max, capacity);
  return Napi::Number::New(env, r);
}

// offloadCoalesce(data, offsets, lengths, count, capacity, flags, stats?) -> items
Napi::Value CoalesceJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  const char* fn = "offloadCoalesce";
  Packets p;
  if (!args::GetPackets(info, 0, fn, &p)) return Napi::Value();
  double count_d = 0;
  if (!GetInt(env, info[3], fn, "count", 0, static_cast<double>(kCoalesceMaxPackets), &count_d)) {
    return Napi::Value();
  }
  const size_t count = static_cast<size_t>(count_d);
  if (!args::CountFits(env, fn, count, p)) return Napi::Value();
  uint32_t capacity = 0, flags = 0;
  if (!GetUint32(env, info[4], fn, "capacity", &capacity) ||
      !GetUint32(env, info[5], fn, "flags", &flags)) {
    return Napi::Value();
  }
  if ((flags & ~(kCoalesceTcp | kCoalesceUdp | kCoalesceTrusted)) != 0) {
    ThrowRange(env, std::string(fn) + ": flags " + std::to_string(flags) +
                        " has bits other than 1 (TCP), 2 (UDP) and 4 (trusted)");
    return Napi::Value();
  }
  double* stats = nullptr;
  if (!args::GetStats(env, info[6], fn, "stats", kCoalesceStatCount, &stats)) return Napi::Value();
  uint32_t* offs = reinterpret_cast<uint32_t*>(p.offsets.data);
  uint32_t* lens = p.Lengths();
  for (size_t i = 0; i < count; i++) {
    const uint32_t off = Load(offs, i);
    if (off < kVnetHdrLen) {
      ThrowRange(env, std::string(fn) + ": packet " + std::to_string(i) + ": offset " +
                          std::to_string(off) + " leaves no room for the 10-byte vnet header");
      return Napi::Value();
    }
  }
  if (!args::CheckWrites(env, fn, p, count) || !args::CheckSlots(env, fn, p, capacity, count)) {
    return Napi::Value();
  }
  size_t items = 0, bad = 0;
  if (!Coalesce(p.data.data, p.data.length, offs, lens, count, capacity, flags, stats, &items,
                &bad)) {
    // Only when another thread changed a descriptor since the checks above.
    ThrowRange(env, std::string(fn) + ": packet " + std::to_string(bad) +
                        ": descriptor changed during the call");
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(items));
}

// offloadChecksum(bytes, variant?) -> the folded RFC 1071 sum (not complemented),
// 0..0xffff: the loop split and coalesce run, on its own for the tests. variant:
// 'portable' or 'avx2' (undefined when this CPU has no AVX2); without it, the one
// split and coalesce use.
Napi::Value ChecksumJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  View bytes;
  if (!GetArray(env, info[0], napi_uint8_array, "offloadChecksum", "data", "Uint8Array", &bytes)) {
    return Napi::Value();
  }
  uint64_t (*sum)(const uint8_t*, size_t, uint64_t) = Sum;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    const std::string variant = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    if (variant == "avx2") {
      if (!cpu::kHasAvx2) return info.Env().Undefined();
      sum = SumAvx2;
    } else if (variant == "portable") {
      sum = SumPortable;
    } else {
      ThrowType(env, "offloadChecksum: variant must be 'portable' or 'avx2'");
      return Napi::Value();
    }
  }
  const uint16_t native = Fold(sum(bytes.data, bytes.length, 0));
  uint8_t b[2];
  std::memcpy(b, &native, 2);
  return Napi::Number::New(env, b[0] << 8 | b[1]);
}

}  // namespace

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("offloadSplit", Napi::Function::New(env, SplitJs, "offloadSplit"));
  exports.Set("offloadCoalesce", Napi::Function::New(env, CoalesceJs, "offloadCoalesce"));
  exports.Set("offloadChecksum", Napi::Function::New(env, ChecksumJs, "offloadChecksum"));
  auto num = [&](const char* name, double v) { exports.Set(name, Napi::Number::New(env, v)); };
  num("VNET_HDR_LEN", kVnetHdrLen);
  num("VNET_F_NEEDS_CSUM", kVnetNeedsCsum);
  num("VNET_F_DATA_VALID", kVnetDataValid);
  num("VNET_GSO_NONE", kGsoNone);
  num("VNET_GSO_TCPV4", kGsoTcpV4);
  num("VNET_GSO_UDP", kGsoUdp);
  num("VNET_GSO_TCPV6", kGsoTcpV6);
  num("VNET_GSO_UDP_L4", kGsoUdpL4);
  num("VNET_GSO_ECN", kGsoEcn);
  num("COALESCE_TCP", kCoalesceTcp);
  num("COALESCE_UDP", kCoalesceUdp);
  num("COALESCE_TRUSTED", kCoalesceTrusted);
  num("COALESCE_MAX_PACKETS", kCoalesceMaxPackets);
  exports.Set("OFFLOAD_STAT_NAMES", args::Names(env, kOffloadStatNames, kOffloadStatCount));
  exports.Set("SPLIT_DROP_NAMES", args::Names(env, kSplitDropNames, kSplitDropCount));
  exports.Set("COALESCE_STAT_NAMES", args::Names(env, kCoalesceStatNames, kCoalesceStatCount));
}

}  // namespace tundra::offload
