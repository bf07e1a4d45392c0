// UDP sockets: dual-stack bind, large buffers, recvmmsg/sendmmsg batches,
// UDP GSO (UDP_SEGMENT) on send and GRO (UDP_GRO) on receive.
#include "udp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <string>
#include <tuple>

#include "batch_args.h"
#include "napi_args.h"

namespace tundra::udp {
namespace {

using args::Batch;
using args::GetArray;
using args::GetBool;
using args::GetFd;
using args::GetStats;
using args::GetUint32;
using args::Load;
using args::ThrowErrno;
using args::ThrowRange;
using args::ThrowType;
using args::View;

constexpr uint32_t kDefaultBuffer = 7 << 20;  // wireguard-go's socketBufferSize
// A bounded number of pending socket errors skipped per receive call (each
// recv consumes one), so a strange persistent error cannot spin us here.
constexpr int kMaxSkippedErrors = 16;

// Send control: a UDP_SEGMENT cmsg, whose payload is a u16 (the kernel
// insists on cmsg_len == CMSG_LEN(2)), an IP_PKTINFO or IPV6_PKTINFO one, and
// an IP_TOS or IPV6_TCLASS one (an int).
constexpr size_t kSendControl = CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(int));
constexpr uint8_t kEcnMask = 3;

static_assert(kAddrLocalFamily >= kAddrBytes + 16 && kAddrLocalBytes + 16 == kAddrStride &&
                  kAddrLocalIfindex + 4 <= kAddrLocalBytes && kAddrStride % 4 == 0,
              "address record layout");

static_assert(kGroStateMsgWords * 4 == 12 + kAddrStride, "GRO state message layout");

union SockAddr {
  sockaddr sa;
  sockaddr_in v4;
  sockaddr_in6 v6;
};

// ---- address records -----------------------------------------------------

inline bool IsV4Mapped(const in6_addr& a) {
  static const uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.s6_addr, kPrefix, sizeof kPrefix) == 0;
}

inline void PutIfindex(uint8_t* rec, uint32_t ifindex) {
  for (size_t k = 0; k < 4; k++) rec[kAddrLocalIfindex + k] = static_cast<uint8_t>(ifindex >> (8 * k));
}

inline uint32_t GetIfindex(const uint8_t* rec) {
  uint32_t v = 0;
  for (size_t k = 0; k < 4; k++) v |= uint32_t{rec[kAddrLocalIfindex + k]} << (8 * k);
  return v;
}

void ToRecord(const SockAddr& from, socklen_t len, const RecvCmsgs& c, uint8_t* rec) {
  std::memset(rec, 0, kAddrStride);
  const Local& local = c.local;
  if (local.family != 0) {
    rec[kAddrLocalFamily] = local.family;
    PutIfindex(rec, local.ifindex);
    std::memcpy(rec + kAddrLocalBytes, local.address, local.family == 4 ? 4 : 16);
  }
  uint16_t port_be = 0;
  if (from.sa.sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    rec[kAddrFamily] = 4;
    port_be = from.v4.sin_port;
    std::memcpy(rec + kAddrBytes, &from.v4.sin_addr, 4);
  } else if (from.sa.sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    if (IsV4Mapped(from.v6.sin6_addr)) {
      rec[kAddrFamily] = 4;
      std::memcpy(rec + kAddrBytes, from.v6.sin6_addr.s6_addr + 12, 4);
    } else {
      rec[kAddrFamily] = 6;
      std::memcpy(rec + kAddrBytes, from.v6.sin6_addr.s6_addr, 16);
    }
    port_be = from.v6.sin6_port;
  } else {
    return;  // family 0: no address
  }
  std::memcpy(rec + kAddrPort, &port_be, 2);  // already network order
  rec[kAddrEcn] = c.ecn;
}

// A destination for a socket of family `domain`, from a record already copied
// out of shared memory. IPv4 records become v4-mapped IPv6 on an AF_INET6
// socket; an IPv6 record on an AF_INET socket is passed as it is, for the
// kernel to refuse (EAFNOSUPPORT). A record of another family gets no address
// at all (EDESTADDRREQ from the kernel).
socklen_t FromRecord(const uint8_t* rec, int domain, SockAddr* out) {
  std::memset(out, 0, sizeof *out);
  uint16_t port_be;
  std::memcpy(&port_be, rec + kAddrPort, 2);
  if (rec[kAddrFamily] == 4) {
    if (domain == AF_INET6) {
      out->v6.sin6_family = AF_INET6;
      out->v6.sin6_port = port_be;
      out->v6.sin6_addr.s6_addr[10] = 0xff;
      out->v6.sin6_addr.s6_addr[11] = 0xff;
      std::memcpy(out->v6.sin6_addr.s6_addr + 12, rec + kAddrBytes, 4);
      return sizeof(sockaddr_in6);
    }
    out->v4.sin_family = AF_INET;
    out->v4.sin_port = port_be;
    std::memcpy(&out->v4.sin_addr, rec + kAddrBytes, 4);
    return sizeof(sockaddr_in);
  }
  if (rec[kAddrFamily] == 6) {
    out->v6.sin6_family = AF_INET6;
    out->v6.sin6_port = port_be;
    std::memcpy(out->v6.sin6_addr.s6_addr, rec + kAddrBytes, 16);
    return sizeof(sockaddr_in6);
  }
  return 0;
}

// ---- open ------------------------------------------------------------------

enum class Mode { kDual = 0, kV4 = 4, kV6 = 6 };

struct OpenRequest {
  uint16_t port = 0;
  Mode mode = Mode::kDual;
  bool has_bind = false;
  bool bind_is_v4 = false;
  uint8_t bind[16] = {};
  uint32_t rcvbuf = kDefaultBuffer;  // 0: leave the kernel default
  uint32_t sndbuf = kDefaultBuffer;
  uint32_t fwmark = 0;
  bool gro = false;
  bool reuse_port = false;  // SO_REUSEPORT: join (or start) the port's socket group
};

struct OpenResult {
  int fd = -1;
  int err = 0;  // errno when fd < 0
  const char* syscall = "";
  const char* step = "";  // what failed, for the message
  uint16_t port = 0;
  Mode mode = Mode::kDual;
  bool gso = false;  // UDP_SEGMENT usable on this socket
  bool gro = false;  // UDP_GRO on (asked for and read back as 1)
};

// Buffer sizes are a request, not a requirement: the FORCE variant passes
// rmem_max/wmem_max with CAP_NET_ADMIN; without it the kernel clamps the plain
// one. Failures are ignored, as wireguard-go does.
void SetBuffer(int fd, int force_opt, int opt, uint32_t size) {
  if (size == 0) return;
  const int v = static_cast<int>(size);
  if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof v) == 0) return;
  (void)setsockopt(fd, SOL_SOCKET, opt, &v, sizeof v);
}

OpenResult Open(const OpenRequest& req) {
  OpenResult r;
  int domain = req.mode == Mode::kV4 ? AF_INET : AF_INET6;
  // A v4 bind address needs a v4 socket, or the v4-mapped form on a dual one.
  int fd = socket(domain, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 && req.mode == Mode::kDual && errno == EAFNOSUPPORT &&
      (!req.has_bind || req.bind_is_v4)) {
    // No IPv6 in this kernel: a v4 socket still serves every IPv4 peer.
    domain = AF_INET;
    fd = socket(domain, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  }
  if (fd < 0) {
    r.err = errno;
    r.syscall = "socket";
    r.step = "socket";
    return r;
  }
  auto fail = [&](const char* syscall, const char* step) {
    r.err = errno;
    r.syscall = syscall;
    r.step = step;
    close(fd);
    return r;
  };
  r.mode = domain == AF_INET ? Mode::kV4 : req.mode;
  if (domain == AF_INET6) {
    const int v6only = req.mode == Mode::kV6 ? 1 : 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0) {
      return fail("setsockopt", "IPV6_V6ONLY");
    }
  }
  SetBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, req.rcvbuf);
  SetBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, req.sndbuf);
  if (req.fwmark != 0 &&
      setsockopt(fd, SOL_SOCKET, SO_MARK, &req.fwmark, sizeof req.fwmark) < 0) {
    return fail("setsockopt", "SO_MARK");
  }
  // Receive-queue drop counts come with every datagram queued after a drop.
  const int on = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
  // Each datagram's local address, so replies leave from it (sticky source). A
  // dual socket gets IPV6_PKTINFO for IPv4 datagrams too (v4-mapped).
  if (domain == AF_INET) {
    if (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) < 0) return fail("setsockopt", "IP_PKTINFO");
  } else if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on) < 0) {
    return fail("setsockopt", "IPV6_RECVPKTINFO");
  }
  // Each datagram's outer ECN field (RFC 6040 decapsulation). A dual socket
  // gets an IPv4 datagram's as IP_TOS, so it asks for both.
  if (setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &on, sizeof on) < 0 && domain == AF_INET) {
    return fail("setsockopt", "IP_RECVTOS");
  }
  if (domain == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &on, sizeof on) < 0) {
    return fail("setsockopt", "IPV6_RECVTCLASS");
  }
  // When each datagram reached the socket, so a reader can tell how long the
  // queue held it (best effort: without it, no sojourn is reported).
  (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  // The GSO probe, as wireguard-go's: the option is readable iff the kernel
  // knows it (Linux >= 4.18).
  int value = 0;
  socklen_t value_len = sizeof value;
  r.gso = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &value, &value_len) == 0;
  if (req.gro && setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0) {
    // Kernels before 5.12 accept the option but cannot read it back; their
    // GRO is not trusted (wireguard-go), so it is turned off again there.
    value = 0;
    value_len = sizeof value;
    r.gro = getsockopt(fd, SOL_UDP, UDP_GRO, &value, &value_len) == 0 && value == 1;
    if (!r.gro) {
      const int off = 0;
      (void)setsockopt(fd, SOL_UDP, UDP_GRO, &off, sizeof off);
    }
  }
  SockAddr addr;
  std::memset(&addr, 0, sizeof addr);
  socklen_t len;
  if (domain == AF_INET) {
    addr.v4.sin_family = AF_INET;
    addr.v4.sin_port = htons(req.port);
    if (req.has_bind) std::memcpy(&addr.v4.sin_addr, req.bind, 4);
    len = sizeof addr.v4;
  } else {
    addr.v6.sin6_family = AF_INET6;
    addr.v6.sin6_port = htons(req.port);
    if (req.has_bind && req.bind_is_v4) {
      addr.v6.sin6_addr.s6_addr[10] = 0xff;
      addr.v6.sin6_addr.s6_addr[11] = 0xff;
      std::memcpy(addr.v6.sin6_addr.s6_addr + 12, req.bind, 4);
    } else if (req.has_bind) {
      std::memcpy(addr.v6.sin6_addr.s6_addr, req.bind, 16);
    }
    len = sizeof addr.v6;
  }
  // Before bind, on every socket of a group (the kernel then spreads datagrams over
  // them by a hash of the 4-tuple). Only sockets of the same user may join.
  if (req.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0) {
    return fail("setsockopt", "SO_REUSEPORT");
  }
  if (bind(fd, &addr.sa, len) < 0) return fail("bind", "bind");
  SockAddr bound;
  socklen_t bound_len = sizeof bound;
  if (getsockname(fd, &bound.sa, &bound_len) < 0) return fail("getsockname", "getsockname");
  r.port = ntohs(bound.sa.sa_family == AF_INET ? bound.v4.sin_port : bound.v6.sin6_port);
  r.fd = fd;
  return r;
}

// ---- receive -------------------------------------------------------------

// Errors of the socket itself, as opposed to one datagram or a pending error
// left by an earlier send.
inline bool IsFatal(int err) {
  // Not EOPNOTSUPP: ICMP "source route failed" is reported as that.
  return err == EBADF || err == ENOTSOCK || err == EFAULT || err == EINVAL;
}

inline void Bump(double* stats, size_t index, double by = 1) {
  if (stats != nullptr) stats[index] += by;
}

void SetupRecv(mmsghdr* m, iovec* iov, SockAddr* from, uint8_t* control) {
  std::memset(m, 0, sizeof *m);
  m->msg_hdr.msg_name = from;
  m->msg_hdr.msg_namelen = sizeof *from;
  m->msg_hdr.msg_iov = iov;
  m->msg_hdr.msg_iovlen = 1;
  m->msg_hdr.msg_control = control;
  m->msg_hdr.msg_controllen = kRecvControl;
}

// recvmmsg with the error policy of both receive paths. Returns the messages
// received, or 0 to stop: nothing ready, a fatal error (*fatal set), or too
// many pending errors in this call.
int RecvSome(int fd, mmsghdr* msgs, size_t n, int* skipped, int* fatal) {
  for (;;) {
    const int r = recvmmsg(fd, msgs, static_cast<unsigned>(n), MSG_DONTWAIT, nullptr);
    if (r >= 0) return r;
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return 0;
    if (IsFatal(err)) {
      *fatal = err;
      return 0;
    }
    // A pending socket error (ECONNREFUSED, EHOSTUNREACH, ... from ICMP for
    // an earlier send; only connected or IP_RECVERR sockets get them, but a
    // daemon must not die of one): the call consumed it, so try again. A
    // failed call fills no header, so the same ones are reused.
    if (++*skipped > kMaxSkippedErrors) return 0;
  }
}

}  // namespace

RecvCmsgs ParseCmsgs(msghdr* h, double* stats) {
  RecvCmsgs out;
  const uint8_t* end = static_cast<const uint8_t*>(h->msg_control) + h->msg_controllen;
  for (cmsghdr* c = CMSG_FIRSTHDR(h); c != nullptr; c = CMSG_NXTHDR(h, c)) {
    // CMSG_FIRSTHDR does not hold the first message's length to msg_controllen (found
    // by fuzz/native/udp_cmsg.cc): one that claims more than was written is not read.
    if (c->cmsg_len > static_cast<size_t>(end - reinterpret_cast<const uint8_t*>(c))) break;
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
        c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      std::memcpy(&out.gso_size, CMSG_DATA(c), sizeof(int));
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
               c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
      std::memcpy(&out.overflow, CMSG_DATA(c), sizeof(uint32_t));
      out.has_overflow = true;
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS &&
               c->cmsg_len >= CMSG_LEN(sizeof(uint8_t))) {
      out.ecn = *CMSG_DATA(c) & kEcnMask;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS &&
               c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int tclass;
      std::memcpy(&tclass, CMSG_DATA(c), sizeof tclass);
      out.ecn = static_cast<uint8_t>(tclass) & kEcnMask;
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
               c->cmsg_len >= CMSG_LEN(sizeof(timespec))) {
      timespec ts;
      std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
      out.received_ns = int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
               c->cmsg_len >= CMSG_LEN(sizeof(in_pktinfo))) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      // ipi_spec_dst: the local address a reply should come from (the
      // destination itself, for unicast).
      out.local.family = 4;
      out.local.ifindex = static_cast<uint32_t>(info.ipi_ifindex);
      std::memcpy(out.local.address, &info.ipi_spec_dst, 4);
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
               c->cmsg_len >= CMSG_LEN(sizeof(in6_pktinfo)) && out.local.family == 0) {
      in6_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      out.local.ifindex = info.ipi6_ifindex;
      if (IsV4Mapped(info.ipi6_addr)) {
        out.local.family = 4;
        std::memcpy(out.local.address, info.ipi6_addr.s6_addr + 12, 4);
      } else {
        out.local.family = 6;
        std::memcpy(out.local.address, info.ipi6_addr.s6_addr, 16);
      }
    }
  }
  if (out.has_overflow && stats != nullptr) stats[kRxqOverflowRaw] = out.overflow;
  if ((h->msg_flags & MSG_CTRUNC) != 0) Bump(stats, kCtruncDrops);
  return out;
}

namespace {

// The receive times of the datagrams one call took from the kernel, for the
// sojourn stats: one clock read per call, none without timestamps.
class Sojourn {
 public:
  void Saw(int64_t received_ns) {
    if (received_ns == 0) return;
    newest_ = std::max(newest_, received_ns);
    oldest_ = oldest_ == 0 ? received_ns : std::min(oldest_, received_ns);
  }
  void Report(double* stats) const {
    if (stats == nullptr) return;
    double newest = -1, oldest = -1;
    if (newest_ != 0) {
      timespec now;
      clock_gettime(CLOCK_REALTIME, &now);
      const int64_t now_ns = int64_t{now.tv_sec} * 1000000000 + now.tv_nsec;
      // A clock stepped back since the datagram came reads as no wait.
      newest = static_cast<double>(std::max<int64_t>(0, now_ns - newest_));
      oldest = static_cast<double>(std::max<int64_t>(0, now_ns - oldest_));
    }
    stats[kSojournNewestNs] = newest;
    stats[kSojournOldestNs] = oldest;
  }

 private:
  int64_t newest_ = 0, oldest_ = 0;
};

// The GRO stash header, read once per call (the state may be shared memory).
struct Stash {
  uint32_t messages = 0, next = 0, cut = 0;
};

bool StashValid(const Stash& s, size_t k) {
  return s.messages <= k && s.next <= s.messages && s.cut <= kGroMessageMax &&
         (s.next < s.messages || s.cut == 0);
}

Stash LoadStash(const uint32_t* state) {
  return {Load(state, 0), Load(state, 1), Load(state, 2)};
}

// Describes received message j in the state, for cutting now or later.
void StoreMessage(uint32_t* state, size_t j, mmsghdr* m, const SockAddr& from, double* stats, Sojourn* sojourn) {
  uint32_t* meta = state + kGroStateHeader + j * kGroStateMsgWords;
  const RecvCmsgs c = ParseCmsgs(&m->msg_hdr, stats);
  sojourn->Saw(c.received_ns);
  const int flags = m->msg_hdr.msg_flags;
  const uint32_t drop = (flags & MSG_CTRUNC) != 0 ? kGroCtrunc : (flags & MSG_TRUNC) != 0 ? kGroTrunc : 0;
  const uint32_t len = m->msg_len;
  const uint32_t seg = c.gso_size > 0 ? static_cast<uint32_t>(c.gso_size) : 0;
  meta[0] = len;
  meta[1] = seg;
  meta[2] = drop;
  uint8_t rec[kAddrStride];
  ToRecord(from, m->msg_hdr.msg_namelen, c, rec);
  std::memcpy(meta + 3, rec, kAddrStride);
  const uint32_t datagrams = seg > 0 && len > seg ? (len + seg - 1) / seg : 1;
  if (drop == 0 && datagrams > 1) {
    Bump(stats, kGroReceives);
    Bump(stats, kGroDatagrams, datagrams);
  }
  if (drop == 0 && stats != nullptr) Observe(stats + kRecvSegmentsHistogram, datagrams);
}

}  // namespace

size_t RecvBatch(int fd, uint8_t* data, size_t data_len, const uint32_t* offsets,
                 uint32_t* lengths, uint8_t* addrs, size_t count, uint32_t capacity,
                 double* stats, int* fatal) {
  *fatal = 0;
  mmsghdr msgs[kChunk];
  iovec iov[kChunk];
  SockAddr from[kChunk];
  alignas(cmsghdr) uint8_t control[kChunk][kRecvControl];
  size_t done = 0;
  int skipped = 0;
  Sojourn sojourn;
  while (done < count) {
    size_t n = 0;
    const size_t want = count - done < kChunk ? count - done : kChunk;
    for (; n < want; n++) {
      const uint32_t off = Load(offsets, done + n);
      if (uint64_t{off} + capacity > data_len) break;  // changed since validation
      iov[n] = {data + off, capacity};
      SetupRecv(&msgs[n], &iov[n], &from[n], control[n]);
    }
    if (n == 0) break;
    const int r = RecvSome(fd, msgs, n, &skipped, fatal);
    if (r == 0) break;
    for (int k = 0; k < r; k++) {
      mmsghdr& m = msgs[k];
      const RecvCmsgs c = ParseCmsgs(&m.msg_hdr, stats);
      sojourn.Saw(c.received_ns);
      uint32_t len = m.msg_len;
      // Truncated data or control, or several datagrams coalesced by GRO
      // (a GRO socket read without a stash): the slot cannot hold it.
      if ((m.msg_hdr.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
          (c.gso_size > 0 && len > static_cast<uint32_t>(c.gso_size))) {
        len = 0;
      }
      lengths[done + k] = len;
      if (len > 0 && stats != nullptr) Observe(stats + kRecvSegmentsHistogram, 1);
      ToRecord(from[k], m.msg_hdr.msg_namelen, c, addrs + (done + k) * kAddrStride);
    }
    done += static_cast<size_t>(r);
    if (static_cast<size_t>(r) < n) break;  // the queue is empty now
  }
  sojourn.Report(stats);
  return done;
}

bool GroStateValid(const uint32_t* state, size_t messages) {
  return StashValid(LoadStash(state), messages) && Load(state, 3) == 0;
}

size_t GroRecvBatch(int fd, uint8_t* data, size_t data_len, const uint32_t* offsets,
                    uint32_t* lengths, uint8_t* addrs, size_t count, uint32_t capacity,
                    const GroBuffers& gro, double* stats, int* fatal) {
  *fatal = 0;
  uint32_t* state = gro.state;
  Stash s = LoadStash(state);
  if (!StashValid(s, gro.messages)) s = {};  // changed since validation: drop it
  mmsghdr msgs[kGroMaxMessages];
  iovec iov[kGroMaxMessages];
  SockAddr from[kGroMaxMessages];
  alignas(cmsghdr) uint8_t control[kGroMaxMessages][kRecvControl];
  size_t filled = 0;
  int skipped = 0;
  bool drained = false;  // the last recvmmsg found the queue empty
  Sojourn sojourn;  // of the messages taken from the kernel now, not the stashed ones
  while (filled < count) {
    if (s.next >= s.messages) {
      s = {};
      if (drained) break;
      // Each message is at least one datagram: never more than the free slots.
      const size_t want = std::min(gro.messages, count - filled);
      for (size_t j = 0; j < want; j++) {
        iov[j] = {gro.scratch + j * kGroMessageStride, kGroMessageMax};
        SetupRecv(&msgs[j], &iov[j], &from[j], control[j]);
      }
      const int r = RecvSome(fd, msgs, want, &skipped, fatal);
      if (r == 0) break;
      for (int j = 0; j < r; j++) StoreMessage(state, j, &msgs[j], from[j], stats, &sojourn);
      s.messages = static_cast<uint32_t>(r);
      drained = static_cast<size_t>(r) < want;
    }
    // Cut message s.next from byte s.cut on. Its description is re-read and
    // clamped, so a corrupted state cannot reach outside the message.
    const uint32_t* meta = state + kGroStateHeader + s.next * kGroStateMsgWords;
    const uint32_t len = std::min<uint32_t>(Load(meta, 0), kGroMessageMax);
    uint32_t seg = Load(meta, 1);
    const uint32_t drop = Load(meta, 2);
    uint8_t rec[kAddrStride];
    std::memcpy(rec, meta + 3, kAddrStride);
    const uint8_t* msg = gro.scratch + s.next * kGroMessageStride;
    if (s.cut > 0 && s.cut >= len) {  // only a corrupted state gets here
      s.next++;
      s.cut = 0;
      continue;
    }
    if (seg == 0 || seg > len) seg = len;
    bool stop = false;
    do {  // at least one slot: a dropped message or an empty datagram has length 0
      const uint32_t off = Load(offsets, filled);
      if (uint64_t{off} + capacity > data_len) {  // changed since validation
        stop = true;
        break;
      }
      const uint32_t piece = drop != 0 ? 0 : std::min(seg, len - s.cut);
      const bool fits = piece <= capacity;
      // Not for 0 bytes: an empty data array may have a null pointer, and memcpy
      // must not get one even then.
      if (fits && piece > 0) std::memcpy(data + off, msg + s.cut, piece);
      lengths[filled] = fits ? piece : 0;
      std::memcpy(addrs + filled * kAddrStride, rec, kAddrStride);
      filled++;
      s.cut = drop != 0 ? len : s.cut + piece;
    } while (s.cut < len && filled < count);
    if (stop) break;
    if (s.cut >= len) {
      s.next++;
      s.cut = 0;
    }
  }
  if (s.next >= s.messages) s = {};
  state[0] = s.messages;
  state[1] = s.next;
  state[2] = s.cut;
  state[3] = 0;
  sojourn.Report(stats);
  return filled;
}

// ---- send ------------------------------------------------------------------

namespace {

inline bool GsoAllowed(uint8_t family, uint32_t gso) {
  return (family == 4 && (gso & kGsoV4) != 0) || (family == 6 && (gso & kGsoV6) != 0);
}

inline void SetStatus(int32_t* status, size_t first, size_t n, int32_t value) {
  if (status == nullptr) return;
  for (size_t i = 0; i < n; i++) status[first + i] = value;
}

// Appends one cmsg of `len` payload bytes at `*at` (a zeroed buffer with room).
void PutCmsg(uint8_t** at, int level, int type, const void* payload, size_t len) {
  cmsghdr* c = reinterpret_cast<cmsghdr*>(*at);
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(len);
  std::memcpy(CMSG_DATA(c), payload, len);
  *at += CMSG_SPACE(len);
}

// The record's ECN field as an IP_TOS or IPV6_TCLASS cmsg (the rest of the
// byte zero), when it is not Not-ECT, advancing *at. IP_TOS also on a dual
// socket: a v4-mapped destination is sent by the IPv4 code, which reads it.
void PutEcn(uint8_t** at, const uint8_t* rec) {
  const int ecn = rec[kAddrEcn] & kEcnMask;
  if (ecn == 0) return;
  if (rec[kAddrFamily] == 4) PutCmsg(at, IPPROTO_IP, IP_TOS, &ecn, sizeof ecn);
  else if (rec[kAddrFamily] == 6) PutCmsg(at, IPPROTO_IPV6, IPV6_TCLASS, &ecn, sizeof ecn);
}

// The record's local address as a pktinfo cmsg, when it has one of the remote's
// family (a record the receive path made always has), advancing *at.
void PutSource(uint8_t** at, const uint8_t* rec) {
  const uint8_t family = rec[kAddrLocalFamily];
  if (family == 0 || family != rec[kAddrFamily]) return;
  if (family == 4) {
    // IP_PKTINFO also on a dual socket: a v4-mapped destination is sent by the
    // IPv4 code, which reads it. ipi_ifindex 0: the routing table picks the
    // interface, ipi_spec_dst only fixes the source.
    in_pktinfo info;
    std::memset(&info, 0, sizeof info);
    std::memcpy(&info.ipi_spec_dst, rec + kAddrLocalBytes, 4);
    PutCmsg(at, IPPROTO_IP, IP_PKTINFO, &info, sizeof info);
    return;
  }
  in6_pktinfo info;
  std::memset(&info, 0, sizeof info);
  std::memcpy(info.ipi6_addr.s6_addr, rec + kAddrLocalBytes, 16);
  // Only a link-local source needs its interface (the kernel refuses one
  // without); any other leaves the choice to the routing table.
  const bool link_local = info.ipi6_addr.s6_addr[0] == 0xfe && (info.ipi6_addr.s6_addr[1] & 0xc0) == 0x80;
  if (link_local) info.ipi6_ifindex = GetIfindex(rec);
  PutCmsg(at, IPPROTO_IPV6, IPV6_PKTINFO, &info, sizeof info);
}

}  // namespace

size_t SendBatch(int fd, const uint8_t* data, size_t data_len, const uint32_t* offsets,
                 const uint32_t* lengths, const uint8_t* addrs, size_t count, int32_t* status,
                 uint32_t gso, double* stats, int* fatal) {
  *fatal = 0;
  if (count == 0) return 0;
  // The socket's family decides how IPv4 records are written (v4-mapped on
  // AF_INET6); one getsockopt per batch, not per packet.
  int domain = 0;
  socklen_t dlen = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) < 0) {
    *fatal = errno;
    return 0;
  }
  // Per sendmmsg call: at most kChunk datagrams (one iovec each), hence at
  // most kChunk messages. Message m carries iov[first[m], first[m] + size[m]).
  mmsghdr msgs[kChunk];
  iovec iov[kChunk];
  SockAddr to[kChunk];
  alignas(cmsghdr) uint8_t control[kChunk][kSendControl];
  uint16_t first[kChunk], size[kChunk];
  size_t done = 0;
  while (done < count) {
    size_t nm = 0, used = 0;
    while (used < kChunk && done + used < count) {
      const size_t i = done + used;
      const size_t room = std::min(kChunk - used, count - i);
      const uint32_t off = Load(offsets, i);
      uint32_t len = Load(lengths, i);
      // Changed since validation: send nothing from outside the buffer; an
      // empty datagram to nowhere fails harmlessly below.
      const bool ok = uint64_t{off} + len <= data_len;
      if (!ok) len = 0;
      iov[used] = {const_cast<uint8_t*>(data) + (ok ? off : 0), len};
      uint8_t rec[kAddrStride];
      std::memcpy(rec, addrs + i * kAddrStride, kAddrStride);  // one read of shared memory
      size_t run = 1;
      if (ok && len > 0 && GsoAllowed(rec[kAddrFamily], gso)) {
        const size_t max_bytes = rec[kAddrFamily] == 4 ? kGsoMaxBytesV4 : kGsoMaxBytesV6;
        const size_t max_run = std::min(kGsoMaxSegments, room);
        size_t total = len;
        while (run < max_run) {
          const size_t j = i + run;
          const uint32_t off_j = Load(offsets, j);
          const uint32_t len_j = Load(lengths, j);
          // An empty tail would vanish inside the message: it goes alone.
          if (uint64_t{off_j} + len_j > data_len || len_j == 0 || len_j > len ||
              total + len_j > max_bytes ||
              std::memcmp(addrs + j * kAddrStride, rec, kAddrStride) != 0) {
            break;
          }
          iov[used + run] = {const_cast<uint8_t*>(data) + off_j, len_j};
          total += len_j;
          run++;
          if (len_j < len) break;  // a short datagram ends the run
        }
        // Cut short by this call's iovecs: start it afresh in the next call
        // rather than send it as two messages.
        if (nm > 0 && run == kChunk - used && run < kGsoMaxSegments && i + run < count) break;
      }
      mmsghdr& m = msgs[nm];
      std::memset(&m, 0, sizeof m);
      m.msg_hdr.msg_namelen = ok ? FromRecord(rec, domain, &to[nm]) : 0;
      m.msg_hdr.msg_name = m.msg_hdr.msg_namelen != 0 ? &to[nm] : nullptr;
      m.msg_hdr.msg_iov = &iov[used];
      m.msg_hdr.msg_iovlen = run;
      if (run > 1 || (ok && (rec[kAddrLocalFamily] != 0 || (rec[kAddrEcn] & kEcnMask) != 0))) {
        // Zeroed whole: stray bytes in the control buffer make EINVAL.
        std::memset(control[nm], 0, kSendControl);
        uint8_t* at = control[nm];
        if (run > 1) {
          const uint16_t seg = static_cast<uint16_t>(len);  // <= 65527 / 2
          PutCmsg(&at, SOL_UDP, UDP_SEGMENT, &seg, sizeof seg);
        }
        PutSource(&at, rec);
        if (ok) PutEcn(&at, rec);
        const size_t used_control = static_cast<size_t>(at - control[nm]);
        if (used_control > 0) {
          m.msg_hdr.msg_control = control[nm];
          m.msg_hdr.msg_controllen = used_control;
        }
      }
      first[nm] = static_cast<uint16_t>(used);
      size[nm] = static_cast<uint16_t>(run);
      nm++;
      used += run;
    }
    // sendmmsg reports an error only for the first message it tries; after a
    // partial success the failing message is simply not counted, so the next
    // call starts at it and gets its errno.
    size_t k = 0;
    while (k < nm) {
      const int r = sendmmsg(fd, msgs + k, static_cast<unsigned>(nm - k), MSG_DONTWAIT);
      if (r > 0) {
        for (size_t j = k; j < k + static_cast<size_t>(r); j++) {
          SetStatus(status, done + first[j], size[j], 0);
          if (stats != nullptr) Observe(stats + kSendSegmentsHistogram, size[j]);
          if (size[j] > 1) {
            Bump(stats, kGsoSends);
            Bump(stats, kGsoDatagrams, size[j]);
          }
        }
        k += static_cast<size_t>(r);
        continue;
      }
      const int err = r < 0 ? errno : EIO;  // 0 sent and no error: not expected
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) return done + first[k];
      if (err == EBADF || err == ENOTSOCK) {
        *fatal = err;
        return done + first[k];
      }
      SetStatus(status, done + first[k], size[k], -err);  // this message only
      k++;
    }
    done += used;
  }
  return done;
}

namespace {

// ---- N-API glue ----------------------------------------------------------

// udpOpen(port, family, bindAddress, receiveBuffer, sendBuffer, fwmark, gro, reusePort)
//   family: 0 = dual, 4, 6; bindAddress: string or undefined/null; gro, reusePort: boolean
//   -> { fd, port, family, offloads: { gso, gro } } with family 0 (dual), 4 or 6
//   as really opened
Napi::Value OpenJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  OpenRequest req;
  uint32_t port = 0, family = 0;
  if (!GetUint32(env, info[0], "udpOpen", "port", &port)) return Napi::Value();
  if (port > 65535) {
    ThrowRange(env, "udpOpen: port " + std::to_string(port) + " is not in [0, 65535]");
    return Napi::Value();
  }
  req.port = static_cast<uint16_t>(port);
  if (!GetUint32(env, info[1], "udpOpen", "family", &family)) return Napi::Value();
  if (family != 0 && family != 4 && family != 6) {
    ThrowRange(env, "udpOpen: family must be 'dual', 4 or 6");
    return Napi::Value();
  }
  req.mode = static_cast<Mode>(family);
  std::string bind_text;
  if (!info[2].IsUndefined() && !info[2].IsNull()) {
    if (!info[2].IsString()) {
      ThrowType(env, "udpOpen: bindAddress must be a string");
      return Napi::Value();
    }
    bind_text = info[2].As<Napi::String>().Utf8Value();
    req.has_bind = true;
    if (inet_pton(AF_INET, bind_text.c_str(), req.bind) == 1) {
      req.bind_is_v4 = true;
    } else if (inet_pton(AF_INET6, bind_text.c_str(), req.bind) != 1) {
      ThrowType(env, "udpOpen: bindAddress \"" + bind_text + "\" is not an IP address");
      return Napi::Value();
    }
    if ((req.mode == Mode::kV4 && !req.bind_is_v4) || (req.mode == Mode::kV6 && req.bind_is_v4)) {
      ThrowRange(env, "udpOpen: bindAddress \"" + bind_text + "\" is not an IPv" +
                          std::to_string(family) + " address");
      return Napi::Value();
    }
  }
  for (auto [index, name, field] : {std::tuple{3, "receiveBuffer", &req.rcvbuf},
                                    std::tuple{4, "sendBuffer", &req.sndbuf}}) {
    if (info[index].IsUndefined()) continue;
    if (!GetUint32(env, info[index], "udpOpen", name, field)) return Napi::Value();
    if (*field > 0x7fffffff / 2) {  // the kernel doubles it into an int
      ThrowRange(env, std::string("udpOpen: ") + name + " " + std::to_string(*field) + " is too large");
      return Napi::Value();
    }
  }
  if (!info[5].IsUndefined() && !GetUint32(env, info[5], "udpOpen", "fwmark", &req.fwmark)) {
    return Napi::Value();
  }
  if (!info[6].IsUndefined() && !GetBool(env, info[6], "udpOpen", "gro", &req.gro)) {
    return Napi::Value();
  }
  if (!info[7].IsUndefined() &&
      !GetBool(env, info[7], "udpOpen", "reusePort", &req.reuse_port)) {
    return Napi::Value();
  }
  const OpenResult r = Open(req);
  if (r.fd < 0) {
    std::string where = req.has_bind ? "[" + bind_text + "]:" : "port ";
    ThrowErrno(env, r.err, r.syscall,
               "cannot open UDP socket on " + where + std::to_string(port) + " (" + r.step + ")");
    return Napi::Value();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("fd", Napi::Number::New(env, r.fd));
  result.Set("port", Napi::Number::New(env, r.port));
  result.Set("family", Napi::Number::New(env, static_cast<int>(r.mode)));
  Napi::Object offloads = Napi::Object::New(env);
  offloads.Set("gso", Napi::Boolean::New(env, r.gso));
  offloads.Set("gro", Napi::Boolean::New(env, r.gro));
  result.Set("offloads", offloads);
  return result;
}

// udpSetFwmark(fd, mark): SO_MARK; 0 clears it.
Napi::Value SetFwmarkJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = -1;
  uint32_t mark = 0;
  if (!GetFd(env, info[0], "udpSetFwmark", &fd) ||
      !GetUint32(env, info[1], "udpSetFwmark", "mark", &mark)) {
    return Napi::Value();
  }
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0) {
    ThrowErrno(env, errno, "setsockopt", "cannot set fwmark " + std::to_string(mark) + " on fd " + std::to_string(fd));
  }
  return Napi::Value();
}

// A property of an options object; false if its getter threw.
bool GetProperty(napi_env env, const Napi::Object& o, const char* key, Napi::Value* out) {
  *out = o.Get(key);
  return !Napi::Env(env).IsExceptionPending();
}

// udpRecv's options: { gro?: { scratch: Uint8Array, state: Uint32Array }, stats?: Float64Array }.
bool GetRecvOptions(napi_env env, const Napi::Value& v, bool* use_gro, GroBuffers* gro,
                    double** stats) {
  *use_gro = false;
  *stats = nullptr;
  if (v.IsUndefined() || v.IsNull()) return true;
  if (!v.IsObject()) return ThrowType(env, "udpRecv: options must be an object");
  const Napi::Object o = v.As<Napi::Object>();
  Napi::Value s, g;
  if (!GetProperty(env, o, "stats", &s) ||
      !GetStats(env, s, "udpRecv", "options.stats", kRecvStatCount, stats) ||
      !GetProperty(env, o, "gro", &g)) {
    return false;
  }
  if (g.IsUndefined()) return true;
  if (!g.IsObject()) return ThrowType(env, "udpRecv: options.gro must be an object");
  const Napi::Object go = g.As<Napi::Object>();
  Napi::Value scratch_v, state_v;
  View scratch, state;
  if (!GetProperty(env, go, "scratch", &scratch_v) ||
      !GetArray(env, scratch_v, napi_uint8_array, "udpRecv", "options.gro.scratch", "Uint8Array",
                &scratch) ||
      !GetProperty(env, go, "state", &state_v) ||
      !GetArray(env, state_v, napi_uint32_array, "udpRecv", "options.gro.state", "Uint32Array",
                &state)) {
    return false;
  }
  const size_t k = scratch.length / kGroMessageStride;
  if (scratch.length % kGroMessageStride != 0 || k < 1 || k > kGroMaxMessages) {
    return ThrowRange(env, "udpRecv: options.gro.scratch.length " + std::to_string(scratch.length) +
                               " is not k * " + std::to_string(kGroMessageStride) + " with 1 <= k <= " +
                               std::to_string(kGroMaxMessages));
  }
  if (state.length < kGroStateWords) {
    return ThrowRange(env, "udpRecv: options.gro.state.length " + std::to_string(state.length) +
                               " is less than UDP_GRO_STATE_WORDS " + std::to_string(kGroStateWords));
  }
  const uint32_t* words = reinterpret_cast<const uint32_t*>(state.data);
  if (!GroStateValid(words, k)) {
    return ThrowRange(env, "udpRecv: options.gro.state is not a stash left by udpRecv with this "
                           "scratch (zero it once, then leave it alone)");
  }
  *use_gro = true;
  gro->scratch = scratch.data;
  gro->messages = k;
  gro->state = reinterpret_cast<uint32_t*>(state.data);
  return true;
}

// udpRecv(fd, data, offsets, lengths, addrs, count, capacity, options?) -> slots filled
Napi::Value RecvJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  Batch a;
  if (!args::GetBatch(info, "udpRecv", kAddrStride, &a)) return Napi::Value();
  uint32_t capacity = 0;
  if (!GetUint32(env, info[6], "udpRecv", "capacity", &capacity) ||
      !args::CheckSlots(env, "udpRecv", a, capacity, a.count)) {
    return Napi::Value();
  }
  bool use_gro = false;
  GroBuffers gro;
  double* stats = nullptr;
  if (!GetRecvOptions(env, info[7], &use_gro, &gro, &stats)) return Napi::Value();
  int fatal = 0;
  const size_t n =
      use_gro ? GroRecvBatch(a.fd, a.data.data, a.data.length, a.Offsets(), a.Lengths(),
                             a.addrs.data, a.count, capacity, gro, stats, &fatal)
              : RecvBatch(a.fd, a.data.data, a.data.length, a.Offsets(), a.Lengths(),
                          a.addrs.data, a.count, capacity, stats, &fatal);
  return args::BatchResult(env, n, n == 0, fatal, "recvmmsg", "cannot receive on UDP fd ", a.fd);
}

// udpSend(fd, data, offsets, lengths, addrs, count, status?, gso?, stats?) -> consumed
Napi::Value SendJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  Batch a;
  if (!args::GetBatch(info, "udpSend", kAddrStride, &a)) return Napi::Value();
  View status;
  if (!args::GetStatus(info, 6, "udpSend", a.count, &status)) return Napi::Value();
  uint32_t gso = 0;
  if (!info[7].IsUndefined() && !GetUint32(env, info[7], "udpSend", "gso", &gso)) {
    return Napi::Value();
  }
  if (gso > (kGsoV4 | kGsoV6)) {
    ThrowRange(env, "udpSend: gso " + std::to_string(gso) + " is not a mask of 1 (IPv4) and 2 (IPv6)");
    return Napi::Value();
  }
  double* stats = nullptr;
  if (!GetStats(env, info[8], "udpSend", "stats", kSendStatCount, &stats) ||
      !args::CheckWrites(env, "udpSend", a, a.count)) {
    return Napi::Value();
  }
  int fatal = 0;
  const size_t n = SendBatch(a.fd, a.data.data, a.data.length, a.Offsets(), a.Lengths(),
                             a.addrs.data, a.count, reinterpret_cast<int32_t*>(status.data), gso,
                             stats, &fatal);
  return args::BatchResult(env, n, true, fatal, "sendmmsg", "cannot send on UDP fd ", a.fd);
}

}  // namespace

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("udpOpen", Napi::Function::New(env, OpenJs, "udpOpen"));
  exports.Set("udpSetFwmark", Napi::Function::New(env, SetFwmarkJs, "udpSetFwmark"));
  exports.Set("udpRecv", Napi::Function::New(env, RecvJs, "udpRecv"));
  exports.Set("udpSend", Napi::Function::New(env, SendJs, "udpSend"));
  exports.Set("UDP_ADDR_STRIDE", Napi::Number::New(env, kAddrStride));
  exports.Set("UDP_GSO_MAX_SEGMENTS", Napi::Number::New(env, kGsoMaxSegments));
  exports.Set("UDP_GRO_MESSAGE_STRIDE", Napi::Number::New(env, kGroMessageStride));
  exports.Set("UDP_GRO_MAX_MESSAGES", Napi::Number::New(env, kGroMaxMessages));
  exports.Set("UDP_GRO_STATE_WORDS", Napi::Number::New(env, kGroStateWords));
  // In the order of SendStat and RecvStat.
  exports.Set("UDP_SEND_STAT_NAMES",
              args::Names(env, {"gso_sends", "gso_datagrams", "udp_send_segments_bucket_1",
                                "udp_send_segments_bucket_2", "udp_send_segments_bucket_4",
                                "udp_send_segments_bucket_8", "udp_send_segments_bucket_16",
                                "udp_send_segments_bucket_32", "udp_send_segments_bucket_64",
                                "udp_send_segments_bucket_inf", "udp_send_segments_sum"}));
  exports.Set("UDP_RECV_STAT_NAMES",
              args::Names(env, {"gro_receives", "gro_datagrams", "ctrunc_drops", "rxq_overflow_raw",
                                "sojourn_newest_ns", "sojourn_oldest_ns",
                                "udp_recv_segments_bucket_1", "udp_recv_segments_bucket_2",
                                "udp_recv_segments_bucket_4", "udp_recv_segments_bucket_8",
                                "udp_recv_segments_bucket_16", "udp_recv_segments_bucket_32",
                                "udp_recv_segments_bucket_64", "udp_recv_segments_bucket_inf",
                                "udp_recv_segments_sum"}));
  static_assert(kSendStatCount == 2 + kHistogramEntries && kRecvStatCount == 6 + kHistogramEntries,
                "stat names");
}

}  // namespace tundra::udp
