// UDP sockets: dual-stack bind, large buffers, recvmmsg/sendmmsg batches.
#include "udp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <tuple>

#include "napi_args.h"

namespace tundra::udp {
namespace {

using args::CheckPackets;
using args::GetArray;
using args::GetFd;
using args::GetStatus;
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

void ToRecord(const SockAddr& from, socklen_t len, uint8_t* rec) {
  std::memset(rec, 0, kAddrStride);
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
}

// A destination for a socket of family `domain`. IPv4 records become
// v4-mapped IPv6 on an AF_INET6 socket; an IPv6 record on an AF_INET socket is
// passed as it is, for the kernel to refuse (EAFNOSUPPORT). A record of
// another family gets no address at all (EDESTADDRREQ from the kernel).
socklen_t FromRecord(const uint8_t* rec_shared, int domain, SockAddr* out) {
  uint8_t rec[kAddrStride];
  std::memcpy(rec, rec_shared, kAddrStride);  // one read of shared memory
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
};

struct OpenResult {
  int fd = -1;
  int err = 0;  // errno when fd < 0
  const char* syscall = "";
  const char* step = "";  // what failed, for the message
  uint16_t port = 0;
  Mode mode = Mode::kDual;
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
  // GRO: UDP_GRO (kernel >= 5.12) goes here, probed and reported back.
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
  if (bind(fd, &addr.sa, len) < 0) return fail("bind", "bind");
  SockAddr bound;
  socklen_t bound_len = sizeof bound;
  if (getsockname(fd, &bound.sa, &bound_len) < 0) return fail("getsockname", "getsockname");
  r.port = ntohs(bound.sa.sa_family == AF_INET ? bound.v4.sin_port : bound.v6.sin6_port);
  r.fd = fd;
  return r;
}

// ---- N-API glue ----------------------------------------------------------

// udpOpen(port, family, bindAddress, receiveBuffer, sendBuffer, fwmark)
//   family: 0 = dual, 4, 6; bindAddress: string or undefined/null
//   -> { fd, port, family } with family 0 (dual), 4 or 6 as really opened
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

// Common checks of udpRecv/udpSend: fd, data, offsets, lengths, addrs, count.
struct BatchArgs {
  int fd = -1;
  View data, offsets, lengths, addrs;
  size_t count = 0;
};

bool GetBatchArgs(const Napi::CallbackInfo& info, const char* fn, BatchArgs* a) {
  napi_env env = info.Env();
  if (!GetFd(env, info[0], fn, &a->fd) ||
      !GetArray(env, info[1], napi_uint8_array, fn, "data", "Uint8Array", &a->data) ||
      !GetArray(env, info[2], napi_uint32_array, fn, "offsets", "Uint32Array", &a->offsets) ||
      !GetArray(env, info[3], napi_uint32_array, fn, "lengths", "Uint32Array", &a->lengths) ||
      !GetArray(env, info[4], napi_uint8_array, fn, "addrs", "Uint8Array", &a->addrs)) {
    return false;
  }
  uint32_t count = 0;
  if (!GetUint32(env, info[5], fn, "count", &count)) return false;
  if (count > a->offsets.length || count > a->lengths.length ||
      count > a->addrs.length / kAddrStride) {
    return ThrowRange(env, std::string(fn) + ": count " + std::to_string(count) +
                               " exceeds offsets.length " + std::to_string(a->offsets.length) +
                               ", lengths.length " + std::to_string(a->lengths.length) +
                               " or the " + std::to_string(a->addrs.length / kAddrStride) +
                               " records of addrs");
  }
  a->count = count;
  return true;
}

// udpRecv(fd, data, offsets, lengths, addrs, count, capacity) -> slots filled
Napi::Value RecvJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  BatchArgs a;
  if (!GetBatchArgs(info, "udpRecv", &a)) return Napi::Value();
  uint32_t capacity = 0;
  if (!GetUint32(env, info[6], "udpRecv", "capacity", &capacity)) return Napi::Value();
  const uint32_t* offsets = reinterpret_cast<const uint32_t*>(a.offsets.data);
  if (!CheckPackets(env, "udpRecv", offsets, nullptr, capacity, a.count, a.data.length)) {
    return Napi::Value();
  }
  int fatal = 0;
  const size_t n = RecvBatch(a.fd, a.data.data, a.data.length, offsets,
                             reinterpret_cast<uint32_t*>(a.lengths.data), a.addrs.data, a.count,
                             capacity, &fatal);
  if (n == 0 && fatal != 0) {
    ThrowErrno(env, fatal, "recvmmsg", "cannot receive on UDP fd " + std::to_string(a.fd));
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// udpSend(fd, data, offsets, lengths, addrs, count, status?) -> consumed
Napi::Value SendJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  BatchArgs a;
  if (!GetBatchArgs(info, "udpSend", &a)) return Napi::Value();
  View status;
  if (!GetStatus(info, 6, "udpSend", a.count, &status)) return Napi::Value();
  const uint32_t* offsets = reinterpret_cast<const uint32_t*>(a.offsets.data);
  const uint32_t* lengths = reinterpret_cast<const uint32_t*>(a.lengths.data);
  if (!CheckPackets(env, "udpSend", offsets, lengths, 0, a.count, a.data.length)) {
    return Napi::Value();
  }
  int fatal = 0;
  const size_t n = SendBatch(a.fd, a.data.data, a.data.length, offsets, lengths, a.addrs.data,
                             a.count, reinterpret_cast<int32_t*>(status.data), &fatal);
  if (fatal != 0) {
    ThrowErrno(env, fatal, "sendmmsg", "cannot send on UDP fd " + std::to_string(a.fd));
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// Errors of the socket itself, as opposed to one datagram or a pending error
// left by an earlier send.
inline bool IsFatal(int err) {
  // Not EOPNOTSUPP: ICMP "source route failed" is reported as that.
  return err == EBADF || err == ENOTSOCK || err == EFAULT || err == EINVAL;
}

}  // namespace

size_t RecvBatch(int fd, uint8_t* data, size_t data_len, const uint32_t* offsets,
                 uint32_t* lengths, uint8_t* addrs, size_t count, uint32_t capacity,
                 int* fatal) {
  *fatal = 0;
  mmsghdr msgs[kChunk];
  iovec iov[kChunk];
  SockAddr from[kChunk];
  size_t done = 0;
  int skipped = 0;
  while (done < count) {
    size_t n = 0;
    const size_t want = count - done < kChunk ? count - done : kChunk;
    for (; n < want; n++) {
      const uint32_t off = Load(offsets, done + n);
      if (uint64_t{off} + capacity > data_len) break;  // changed since validation
      iov[n] = {data + off, capacity};
      std::memset(&msgs[n], 0, sizeof msgs[n]);
      msgs[n].msg_hdr.msg_name = &from[n];
      msgs[n].msg_hdr.msg_namelen = sizeof from[n];
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      // GRO: msg_control for the UDP_GRO cmsg (segment size) goes here.
    }
    if (n == 0) break;
    const int r = recvmmsg(fd, msgs, static_cast<unsigned>(n), MSG_DONTWAIT, nullptr);
    if (r < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (IsFatal(err)) {
        *fatal = err;
        break;
      }
      // A pending socket error (ECONNREFUSED, EHOSTUNREACH, ... from ICMP for
      // an earlier send; only connected or IP_RECVERR sockets get them, but a
      // daemon must not die of one): the call consumed it, so try again.
      if (++skipped > kMaxSkippedErrors) break;
      continue;
    }
    for (int k = 0; k < r; k++) {
      const mmsghdr& m = msgs[k];
      lengths[done + k] = (m.msg_hdr.msg_flags & MSG_TRUNC) != 0 ? 0 : m.msg_len;
      ToRecord(from[k], m.msg_hdr.msg_namelen, addrs + (done + k) * kAddrStride);
      // GRO: a UDP_GRO cmsg here means msg_len holds several datagrams of
      // gso_size bytes each, to be cut into slots.
    }
    done += static_cast<size_t>(r);
    if (static_cast<size_t>(r) < n) break;  // the queue is empty now
  }
  return done;
}

size_t SendBatch(int fd, const uint8_t* data, size_t data_len, const uint32_t* offsets,
                 const uint32_t* lengths, const uint8_t* addrs, size_t count, int32_t* status,
                 int* fatal) {
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
  mmsghdr msgs[kChunk];
  iovec iov[kChunk];
  SockAddr to[kChunk];
  size_t done = 0;
  while (done < count) {
    const size_t n = count - done < kChunk ? count - done : kChunk;
    for (size_t k = 0; k < n; k++) {
      const uint32_t off = Load(offsets, done + k);
      uint32_t len = Load(lengths, done + k);
      // Changed since validation: send nothing from outside the buffer; an
      // empty datagram to nowhere fails harmlessly below.
      const bool ok = uint64_t{off} + len <= data_len;
      if (!ok) len = 0;
      iov[k] = {const_cast<uint8_t*>(data) + (ok ? off : 0), len};
      std::memset(&msgs[k], 0, sizeof msgs[k]);
      msgs[k].msg_hdr.msg_namelen =
          ok ? FromRecord(addrs + (done + k) * kAddrStride, domain, &to[k]) : 0;
      msgs[k].msg_hdr.msg_name = msgs[k].msg_hdr.msg_namelen != 0 ? &to[k] : nullptr;
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
      // GSO: consecutive equal-size datagrams to one address become one
      // message with a UDP_SEGMENT cmsg (u16) here; EIO means no TX checksum
      // offload on the route: resend without it and stop using it.
    }
    // sendmmsg reports an error only for the first message it tries; after a
    // partial success the failing message is simply not counted, so the next
    // call starts at it and gets its errno.
    size_t k = 0;
    while (k < n) {
      const int r = sendmmsg(fd, msgs + k, static_cast<unsigned>(n - k), MSG_DONTWAIT);
      if (r > 0) {
        if (status != nullptr) {
          for (int j = 0; j < r; j++) status[done + k + j] = 0;
        }
        k += static_cast<size_t>(r);
        continue;
      }
      const int err = r < 0 ? errno : EIO;  // 0 sent and no error: not expected
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) return done + k;
      if (err == EBADF || err == ENOTSOCK) {
        *fatal = err;
        return done + k;
      }
      if (status != nullptr) status[done + k] = -err;  // this datagram only
      k++;
    }
    done += n;
  }
  return done;
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("udpOpen", Napi::Function::New(env, OpenJs, "udpOpen"));
  exports.Set("udpSetFwmark", Napi::Function::New(env, SetFwmarkJs, "udpSetFwmark"));
  exports.Set("udpRecv", Napi::Function::New(env, RecvJs, "udpRecv"));
  exports.Set("udpSend", Napi::Function::New(env, SendJs, "udpSend"));
  exports.Set("UDP_ADDR_STRIDE", Napi::Number::New(env, kAddrStride));
}

}  // namespace tundra::udp
