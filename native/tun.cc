// TUN devices through /dev/net/tun, link settings through interface ioctls.
#include "tun.h"

#include <fcntl.h>
#include <net/if.h>  // before any linux/ header: glibc's struct ifreq
#include <linux/if_tun.h>
#include <linux/net_namespace.h>  // NETNSA_*
#include <linux/netlink.h>
#include <linux/rtnetlink.h>  // RTM_*, IFLA_*, struct rtnl_link_stats64
#include <linux/sockios.h>    // SIOCGSKNS
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "batch_args.h"
#include "napi_args.h"
#include "offload.h"

namespace tundra::tun {
namespace {

using args::Batch;
using args::GetArray;
using args::GetFd;
using args::GetIfName;
using args::GetUint32;
using args::Load;
using args::Packets;
using args::ThrowErrno;
using args::ThrowRange;
using args::View;

// Flags a caller may add to IFF_TUN | IFF_NO_PI. IFF_VNET_HDR prefixes every
// read/write with a virtio_net_hdr (read with tunReadVnet, write coalesced
// items with tunWrite); IFF_MULTI_QUEUE lets several fds (one per reader
// thread) attach to one interface.
constexpr uint32_t kExtraFlagsAllowed = IFF_VNET_HDR | IFF_MULTI_QUEUE;

// TUNSETOFFLOAD bits (USO arrived in Linux 6.2, after some installed headers).
constexpr uint32_t kTunFCsum = 0x01;
constexpr uint32_t kTunFTso4 = 0x02;
constexpr uint32_t kTunFTso6 = 0x04;
constexpr uint32_t kTunFTsoEcn = 0x08;
constexpr uint32_t kTunFUfo = 0x10;
constexpr uint32_t kTunFUso4 = 0x20;
constexpr uint32_t kTunFUso6 = 0x40;
static_assert(TUN_F_CSUM == kTunFCsum && TUN_F_TSO4 == kTunFTso4 && TUN_F_TSO6 == kTunFTso6 &&
                  TUN_F_TSO_ECN == kTunFTsoEcn && TUN_F_UFO == kTunFUfo,
              "linux/if_tun.h disagrees");

// Opens and attaches; returns the fd, or -errno with *syscall saying which
// call failed. name may be "" or a pattern such as "tdr%d"; the kernel's
// final name is written back into it.
int Open(char name[IFNAMSIZ], uint32_t extra_flags, const char** syscall) {
  *syscall = "open";
  const int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -errno;
  *syscall = "ioctl";
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::memcpy(ifr.ifr_name, name, IFNAMSIZ);
  ifr.ifr_flags = static_cast<short>(IFF_TUN | IFF_NO_PI | extra_flags);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    const int err = errno;
    close(fd);
    return -err;
  }
  std::memcpy(name, ifr.ifr_name, IFNAMSIZ);
  name[IFNAMSIZ - 1] = '\0';
  return fd;
}

// Interface ioctls need some socket in the caller's network namespace; AF_UNIX
// serves (dev_ioctl is reached from any family) where AF_INET is missing.
int ControlSocket() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  return s;
}

// Runs fn(sock, ifr) on a throwaway control socket; returns 0 or an errno.
template <typename Fn>
int WithIfreq(const char name[IFNAMSIZ], Fn fn) {
  const int s = ControlSocket();
  if (s < 0) return errno;
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::memcpy(ifr.ifr_name, name, IFNAMSIZ);
  const int err = fn(s, &ifr);
  close(s);
  return err;
}

int SetMtu(const char name[IFNAMSIZ], int mtu) {
  return WithIfreq(name, [mtu](int s, struct ifreq* ifr) {
    ifr->ifr_mtu = mtu;
    return ioctl(s, SIOCSIFMTU, ifr) < 0 ? errno : 0;
  });
}

// The MTU, or 0 with *err = 0 when there is no such interface.
int GetMtu(const char name[IFNAMSIZ], int* err) {
  int mtu = 0;
  *err = WithIfreq(name, [&mtu](int s, struct ifreq* ifr) {
    if (ioctl(s, SIOCGIFMTU, ifr) < 0) return errno;
    mtu = ifr->ifr_mtu;
    return 0;
  });
  if (*err == ENODEV) *err = 0;
  return mtu;
}

// ---- the interface behind a TUN fd, wherever it lives ---------------------
//
// `ip link set IF netns NS` moves the interface to another network namespace;
// the fd stays attached (and its traffic flows) until the interface is
// deleted, in whatever namespace, or with its namespace. TUNGETIFF on the fd
// gives its name now (EBADFD once deleted), TUNGETDEVNETNS (Linux 5.2+) its
// namespace. rtnetlink answers for a namespace other than the socket's by its
// nsid (IFLA_TARGET_NETNSID, Linux 4.20+), with CAP_NET_ADMIN only: no setns
// (CAP_SYS_ADMIN, and refused under systemd's RestrictNamespaces=). Nothing
// made here is kept: a namespace fd kept open would keep a deleted namespace
// alive, and the interface with it.

// Closes the fd it holds (if any) when it goes out of scope.
class OwnedFd {
 public:
  explicit OwnedFd(int fd) : fd_(fd) {}
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() { Reset(-1); }
  int get() const { return fd_; }
  void Reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// The name of the interface the TUN fd is attached to; 0 or an errno.
int TunName(int fd, char name[IFNAMSIZ]) {
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) return errno;
  std::memcpy(name, ifr.ifr_name, IFNAMSIZ);
  name[IFNAMSIZ - 1] = '\0';
  return 0;
}

// One rtnetlink request and its answer, on a NETLINK_ROUTE socket of this
// process. Requests and answers are small (an RTM_NEWLINK of a TUN is about
// 2 KB); the kernel answers within the send, so the receive never waits.
class Rtnl {
 public:
  // The socket; -1 with errno set if it could not be made.
  Rtnl() : sock_(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) {}
  int fd() const { return sock_.get(); }

  // Starts a request of `type` whose fixed header is `header_len` bytes (zeroed).
  void Begin(uint16_t type, uint16_t flags, size_t header_len) {
    std::memset(request_, 0, sizeof request_);
    nlmsghdr* h = Request();
    h->nlmsg_len = static_cast<uint32_t>(NLMSG_LENGTH(header_len));
    h->nlmsg_type = type;
    h->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
    h->nlmsg_seq = ++seq_;
  }
  void* Header() { return NLMSG_DATA(Request()); }
  // Appends an attribute (the requests here are far below the buffer's size).
  void Put(uint16_t type, const void* data, size_t len) {
    nlmsghdr* h = Request();
    const size_t at = NLMSG_ALIGN(h->nlmsg_len);
    const size_t attr_len = RTA_LENGTH(len);
    if (at + RTA_ALIGN(attr_len) > sizeof request_) return;
    rtattr* a = reinterpret_cast<rtattr*>(request_ + at);
    a->rta_type = type;
    a->rta_len = static_cast<uint16_t>(attr_len);
    std::memcpy(RTA_DATA(a), data, len);
    h->nlmsg_len = static_cast<uint32_t>(at + RTA_ALIGN(attr_len));
  }
  // Sends the request; returns 0 or an errno (the kernel's refusal, or
  // EPROTO for an answer that does not parse). *answer is the answer's
  // message, or null for an acknowledgement.
  int Send(const nlmsghdr** answer) {
    *answer = nullptr;
    struct sockaddr_nl kernel;
    std::memset(&kernel, 0, sizeof kernel);
    kernel.nl_family = AF_NETLINK;
    const nlmsghdr* req = Request();
    if (sendto(fd(), req, req->nlmsg_len, 0, reinterpret_cast<const sockaddr*>(&kernel),
               sizeof kernel) < 0) {
      return errno;
    }
    for (;;) {
      const ssize_t n = recv(fd(), answer_, sizeof answer_, MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      if (static_cast<size_t>(n) > sizeof answer_) return EMSGSIZE;
      size_t at = 0;
      while (at + sizeof(nlmsghdr) <= static_cast<size_t>(n)) {
        const nlmsghdr* h = reinterpret_cast<const nlmsghdr*>(answer_ + at);
        if (h->nlmsg_len < sizeof(nlmsghdr) || at + h->nlmsg_len > static_cast<size_t>(n)) {
          return EPROTO;
        }
        at += NLMSG_ALIGN(h->nlmsg_len);
        if (h->nlmsg_seq != seq_) continue;  // an answer to an earlier request
        if (h->nlmsg_type != NLMSG_ERROR) {
          *answer = h;
          return 0;
        }
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return EPROTO;
        const int error = static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
        return error < 0 ? -error : 0;
      }
    }
  }

  // Calls fn(type, data, len) for each attribute of `message` after its
  // fixed header of `header_len` bytes.
  template <typename Fn>
  static void ForEachAttr(const nlmsghdr* message, size_t header_len, Fn fn) {
    const size_t end = message->nlmsg_len;
    size_t at = NLMSG_SPACE(header_len);
    const uint8_t* base = reinterpret_cast<const uint8_t*>(message);
    while (at + sizeof(rtattr) <= end) {
      const rtattr* a = reinterpret_cast<const rtattr*>(base + at);
      if (a->rta_len < sizeof(rtattr) || at + a->rta_len > end) return;
      fn(a->rta_type & NLA_TYPE_MASK, static_cast<const uint8_t*>(RTA_DATA(a)),
         a->rta_len - RTA_LENGTH(0));
      at += RTA_ALIGN(a->rta_len);
    }
  }

 private:
  nlmsghdr* Request() { return reinterpret_cast<nlmsghdr*>(request_); }

  OwnedFd sock_;
  uint32_t seq_ = 0;
  alignas(nlmsghdr) uint8_t request_[256];
  alignas(nlmsghdr) uint8_t answer_[16384];
};

// The nsid this process's namespace has for the namespace `netns` (an nsfs
// fd) refers to; NETNSA_NSID_NOT_ASSIGNED when it has none. 0 or an errno.
int GetNsid(Rtnl* rtnl, int netns, int32_t* nsid) {
  rtnl->Begin(RTM_GETNSID, 0, sizeof(rtgenmsg));
  static_cast<rtgenmsg*>(rtnl->Header())->rtgen_family = AF_UNSPEC;
  const uint32_t fd = static_cast<uint32_t>(netns);
  rtnl->Put(NETNSA_FD, &fd, sizeof fd);
  const nlmsghdr* answer = nullptr;
  const int err = rtnl->Send(&answer);
  if (err != 0) return err;
  if (answer == nullptr || answer->nlmsg_type != RTM_NEWNSID) return EPROTO;
  bool found = false;
  Rtnl::ForEachAttr(answer, sizeof(rtgenmsg), [&](int type, const uint8_t* data, size_t len) {
    if (type == NETNSA_NSID && len >= sizeof(int32_t)) {
      std::memcpy(nsid, data, sizeof(int32_t));
      found = true;
    }
  });
  return found ? 0 : EPROTO;
}

// Gives the namespace `netns` an nsid here (the kernel picks it), as moving
// an interface from here to there does. 0, EEXIST (it has one) or an errno.
int AssignNsid(Rtnl* rtnl, int netns) {
  rtnl->Begin(RTM_NEWNSID, NLM_F_ACK, sizeof(rtgenmsg));
  static_cast<rtgenmsg*>(rtnl->Header())->rtgen_family = AF_UNSPEC;
  const uint32_t fd = static_cast<uint32_t>(netns);
  const int32_t any = -1;
  rtnl->Put(NETNSA_FD, &fd, sizeof fd);
  rtnl->Put(NETNSA_NSID, &any, sizeof any);
  const nlmsghdr* answer = nullptr;
  return rtnl->Send(&answer);
}

struct Link {
  char name[IFNAMSIZ];
  uint32_t mtu = 0;
  bool caller_netns = false;
  bool has_tx_dropped = false;
  uint64_t tx_dropped = 0;
};

// What the kernel says of the interface the TUN fd is attached to: its name,
// whether it is in the caller's network namespace, and (RTM_GETLINK there)
// its MTU and tx_dropped counter. Returns 0 or an errno with *syscall naming
// the call: EBADFD (TUNGETIFF) once deleted; ENOTTY or EINVAL (TUNGETDEVNETNS)
// before Linux 5.2; EPERM (TUNGETDEVNETNS, SIOCGSKNS) or EACCES (RTM_GETLINK)
// without CAP_NET_ADMIN; ENODEV (RTM_GETLINK) or EINVAL (an nsid gone) when
// it moved, was renamed or deleted during the look.
int GetLink(int fd, Link* link, const char** syscall) {
  *syscall = "ioctl";
  int err = TunName(fd, link->name);
  if (err != 0) return err;
  OwnedFd dev_netns(ioctl(fd, TUNGETDEVNETNS));
  if (dev_netns.get() < 0) return errno;
  *syscall = "socket";
  Rtnl rtnl;
  if (rtnl.fd() < 0) return errno;
  {
    *syscall = "ioctl";
    OwnedFd own_netns(ioctl(rtnl.fd(), SIOCGSKNS));
    if (own_netns.get() < 0) return errno;
    *syscall = "fstat";
    struct stat dev_st, own_st;
    if (fstat(dev_netns.get(), &dev_st) < 0 || fstat(own_netns.get(), &own_st) < 0) return errno;
    link->caller_netns = dev_st.st_dev == own_st.st_dev && dev_st.st_ino == own_st.st_ino;
  }
  int32_t nsid = NETNSA_NSID_NOT_ASSIGNED;
  if (!link->caller_netns) {
    *syscall = "RTM_GETNSID";
    err = GetNsid(&rtnl, dev_netns.get(), &nsid);
    if (err == 0 && nsid == NETNSA_NSID_NOT_ASSIGNED) {
      // Moved on from the namespace it was first moved to: that one has an
      // nsid for this one, this one none for it yet.
      *syscall = "RTM_NEWNSID";
      err = AssignNsid(&rtnl, dev_netns.get());
      if (err == EEXIST) err = 0;
      *syscall = "RTM_GETNSID";
      if (err == 0) err = GetNsid(&rtnl, dev_netns.get(), &nsid);
      if (err == 0 && nsid == NETNSA_NSID_NOT_ASSIGNED) err = ENOENT;
    }
    if (err != 0) return err;
  }
  dev_netns.Reset(-1);
  *syscall = "RTM_GETLINK";
  rtnl.Begin(RTM_GETLINK, 0, sizeof(ifinfomsg));
  static_cast<ifinfomsg*>(rtnl.Header())->ifi_family = AF_UNSPEC;
  rtnl.Put(IFLA_IFNAME, link->name, std::strlen(link->name) + 1);
  if (!link->caller_netns) rtnl.Put(IFLA_TARGET_NETNSID, &nsid, sizeof nsid);
  const nlmsghdr* answer = nullptr;
  err = rtnl.Send(&answer);
  if (err != 0) return err;
  if (answer == nullptr || answer->nlmsg_type != RTM_NEWLINK) return EPROTO;
  bool has_mtu = false;
  Rtnl::ForEachAttr(answer, sizeof(ifinfomsg), [&](int type, const uint8_t* data, size_t len) {
    if (type == IFLA_MTU && len >= sizeof(uint32_t)) {
      std::memcpy(&link->mtu, data, sizeof(uint32_t));
      has_mtu = true;
    } else if (type == IFLA_STATS64 && len >= offsetof(rtnl_link_stats64, tx_dropped) + sizeof(uint64_t)) {
      std::memcpy(&link->tx_dropped, data + offsetof(rtnl_link_stats64, tx_dropped), sizeof(uint64_t));
      link->has_tx_dropped = true;
    }
  });
  return has_mtu ? 0 : EPROTO;
}

// ---- N-API glue ----------------------------------------------------------

std::string Quoted(const char* name) { return std::string("\"") + name + "\""; }

// tunOpen(name, extraFlags) -> { fd, name }
Napi::Value OpenJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  char name[IFNAMSIZ];
  const int bad = GetIfName(env, info[0], "openTun", name, /*allow_empty=*/true);
  if (bad < 0) return Napi::Value();
  uint32_t extra = 0;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!GetUint32(env, info[1], "openTun", "flags", &extra)) return Napi::Value();
    if ((extra & ~kExtraFlagsAllowed) != 0) {
      ThrowRange(env, "openTun: flags " + std::to_string(extra) + " has bits other than IFF_VNET_HDR and IFF_MULTI_QUEUE");
      return Napi::Value();
    }
  }
  const std::string display = info[0].As<Napi::String>().Utf8Value();
  const std::string what = "cannot create TUN " + Quoted(display.c_str());
  if (bad > 0) {
    // Caught before the kernel sees the name (ENAMETOOLONG for 16 bytes or
    // more, EINVAL for a NUL), worded as the kernel's own errors.
    ThrowErrno(env, bad, "ioctl", what);
    return Napi::Value();
  }
  const char* syscall = "";
  const int fd = Open(name, extra, &syscall);
  if (fd < 0) {
    ThrowErrno(env, -fd, syscall, what);
    return Napi::Value();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("fd", Napi::Number::New(env, fd));
  result.Set("name", Napi::String::New(env, name));
  return result;
}

Napi::Value SetMtuJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  char name[IFNAMSIZ];
  const int bad = GetIfName(env, info[0], "setLinkMtu", name);
  if (bad < 0) return Napi::Value();
  uint32_t mtu = 0;
  if (!GetUint32(env, info[1], "setLinkMtu", "mtu", &mtu)) return Napi::Value();
  if (mtu > 0x7fffffff) {
    ThrowRange(env, "setLinkMtu: mtu " + std::to_string(mtu) + " is too large");
    return Napi::Value();
  }
  const std::string what = "cannot set the MTU of " +
                           Quoted(info[0].As<Napi::String>().Utf8Value().c_str()) + " to " +
                           std::to_string(mtu);
  const int err = bad > 0 ? bad : SetMtu(name, static_cast<int>(mtu));
  if (err != 0) ThrowErrno(env, err, "ioctl", what);
  return Napi::Value();
}

// linkMtu(name): the interface's MTU, or 0 when there is no such interface (also
// for names the kernel could never have), so a poller sees both changes and "gone".
Napi::Value LinkMtuJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  char name[IFNAMSIZ];
  const int bad = GetIfName(env, info[0], "linkMtu", name);
  if (bad < 0) return Napi::Value();
  if (bad > 0) return Napi::Number::New(env, 0);
  int err = 0;
  const int mtu = GetMtu(name, &err);
  if (err != 0) {
    ThrowErrno(env, err, "ioctl", "cannot read the MTU of " + Quoted(name));
    return Napi::Value();
  }
  return Napi::Number::New(env, mtu);
}

// tunName(fd) -> the name of the interface the TUN fd is attached to (TUNGETIFF).
Napi::Value NameJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = -1;
  if (!GetFd(env, info[0], "tunName", &fd)) return Napi::Value();
  char name[IFNAMSIZ];
  const int err = TunName(fd, name);
  if (err != 0) {
    ThrowErrno(env, err, "ioctl", "cannot get the interface of TUN fd " + std::to_string(fd));
    return Napi::Value();
  }
  return Napi::String::New(env, name);
}

// tunLink(fd) -> { name, mtu, callerNetns, txDropped }: GetLink.
Napi::Value LinkJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = -1;
  if (!GetFd(env, info[0], "tunLink", &fd)) return Napi::Value();
  Link link;
  const char* syscall = "";
  const int err = GetLink(fd, &link, &syscall);
  if (err != 0) {
    ThrowErrno(env, err, syscall,
               "cannot look at the interface of TUN fd " + std::to_string(fd) + ": " + syscall);
    return Napi::Value();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("name", Napi::String::New(env, link.name));
  result.Set("mtu", Napi::Number::New(env, link.mtu));
  result.Set("callerNetns", Napi::Boolean::New(env, link.caller_netns));
  if (link.has_tx_dropped) {
    result.Set("txDropped", Napi::Number::New(env, static_cast<double>(link.tx_dropped)));
  }
  return result;
}

// tunRead(fd, data, offsets, lengths, count, capacity) -> packets read
Napi::Value ReadJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  Batch a;
  if (!args::GetBatch(info, "tunRead", 0, &a)) return Napi::Value();
  uint32_t capacity = 0;
  if (!GetUint32(env, info[5], "tunRead", "capacity", &capacity)) return Napi::Value();
  // A bad slot is a caller bug: reject the call before reading anything, so no
  // packet is taken from the device and then lost.
  if (!args::CheckSlots(env, "tunRead", a, capacity, a.count)) return Napi::Value();
  int fatal = 0;
  const size_t n = ReadBatch(a.fd, a.data.data, a.data.length, a.Offsets(), a.Lengths(), a.count,
                             capacity, &fatal);
  return args::BatchResult(env, n, n == 0, fatal, "read", "cannot read from TUN fd ", a.fd);
}

// tunWrite(fd, data, offsets, lengths, count, status?) -> packets consumed
Napi::Value WriteJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  Batch a;
  if (!args::GetBatch(info, "tunWrite", 0, &a)) return Napi::Value();
  View status;
  if (!args::GetStatus(info, 5, "tunWrite", a.count, &status) ||
      !args::CheckWrites(env, "tunWrite", a, a.count)) {
    return Napi::Value();
  }
  int fatal = 0;
  const size_t n = WriteBatch(a.fd, a.data.data, a.data.length, a.Offsets(), a.Lengths(), a.count,
                              reinterpret_cast<int32_t*>(status.data), &fatal);
  return args::BatchResult(env, n, true, fatal, "write", "cannot write to TUN fd ", a.fd);
}

// tunReadVnet(fd, scratch, state, data, offsets, lengths, count, capacity, stats?) -> slots filled
Napi::Value ReadVnetJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  const char* fn = "tunReadVnet";
  int fd = -1;
  View scratch, state;
  Packets p;
  if (!GetFd(env, info[0], fn, &fd) ||
      !GetArray(env, info[1], napi_uint8_array, fn, "scratch", "Uint8Array", &scratch) ||
      !GetArray(env, info[2], napi_uint32_array, fn, "state", "Uint32Array", &state) ||
      !args::GetPackets(info, 3, fn, &p)) {
    return Napi::Value();
  }
  uint32_t count = 0, capacity = 0;
  double* stats = nullptr;
  if (!GetUint32(env, info[6], fn, "count", &count) ||
      !GetUint32(env, info[7], fn, "capacity", &capacity) ||
      !args::GetStats(env, info[8], fn, "stats", offload::kOffloadStatCount, &stats)) {
    return Napi::Value();
  }
  if (scratch.length < kReadScratchSize) {
    ThrowRange(env, std::string(fn) + ": scratch.length " + std::to_string(scratch.length) +
                        " is less than TUN_READ_SCRATCH_SIZE " + std::to_string(kReadScratchSize));
    return Napi::Value();
  }
  if (state.length < 1) {
    ThrowRange(env, std::string(fn) + ": state is empty");
    return Napi::Value();
  }
  uint32_t* pending = reinterpret_cast<uint32_t*>(state.data);
  const uint32_t pending_len = Load(pending, 0);
  if (pending_len >= kReadScratchSize) {
    ThrowRange(env, std::string(fn) + ": state[0] " + std::to_string(pending_len) +
                        " is not a pending length below " + std::to_string(kReadScratchSize));
    return Napi::Value();
  }
  if (!args::CountFits(env, fn, count, p) || !args::CheckSlots(env, fn, p, capacity, count)) {
    return Napi::Value();
  }
  int fatal = 0;
  const size_t n = ReadVnet(fd, scratch.data, pending, p.data.data, p.data.length, p.Offsets(),
                            p.Lengths(), count, capacity, stats, &fatal);
  return args::BatchResult(env, n, n == 0, fatal, "read", "cannot read from TUN fd ", fd);
}

// tunSetVnetHeaderSize(fd, size): TUNSETVNETHDRSZ; throws on failure.
Napi::Value SetVnetHeaderSizeJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  const char* fn = "tunSetVnetHeaderSize";
  int fd = -1;
  double size_d = 0;
  if (!GetFd(env, info[0], fn, &fd) ||
      !args::GetInt(env, info[1], fn, "size", 0, 2147483647.0, &size_d)) {
    return Napi::Value();
  }
  int size = static_cast<int>(size_d);
  if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0) {
    ThrowErrno(env, errno, "ioctl",
               "cannot set the vnet header size of TUN fd " + std::to_string(fd) + " to " +
                   std::to_string(size));
  }
  return Napi::Value();
}

// tunSetOffload(fd, bits) -> 0 | errno: TUNSETOFFLOAD. Every refusal is
// reported, never thrown: the caller decides what to try next.
Napi::Value SetOffloadJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  const char* fn = "tunSetOffload";
  int fd = -1;
  uint32_t bits = 0;
  if (!GetFd(env, info[0], fn, &fd) || !GetUint32(env, info[1], fn, "bits", &bits)) {
    return Napi::Value();
  }
  const int err = ioctl(fd, TUNSETOFFLOAD, static_cast<unsigned long>(bits)) < 0 ? errno : 0;
  return Napi::Number::New(env, err);
}

}  // namespace

size_t ReadBatch(int fd, uint8_t* data, size_t data_len, const uint32_t* offsets,
                 uint32_t* lengths, size_t count, uint32_t capacity, int* fatal) {
  *fatal = 0;
  size_t i = 0;
  while (i < count) {
    const uint32_t off = Load(offsets, i);
    // Changed under us since validation: stop rather than overrun.
    if (uint64_t{off} + capacity > data_len) break;
    // The kernel silently cuts a packet to the buffer and returns the cut
    // length, so a packet of exactly `capacity` bytes and a longer one look
    // alike. One spare byte after the slot tells them apart.
    uint8_t spare;
    struct iovec iov[2] = {{data + off, capacity}, {&spare, 1}};
    const ssize_t n = readv(fd, iov, 2);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) *fatal = errno;
      break;
    }
    // Longer than the slot: not a usable packet, so length 0 (dropped).
    lengths[i] = static_cast<size_t>(n) > capacity ? 0 : static_cast<uint32_t>(n);
    i++;
  }
  return i;
}

size_t WriteBatch(int fd, const uint8_t* data, size_t data_len, const uint32_t* offsets,
                  const uint32_t* lengths, size_t count, int32_t* status, int* fatal) {
  *fatal = 0;
  size_t i = 0;
  while (i < count) {
    const uint32_t off = Load(offsets, i);
    const uint32_t len = Load(lengths, i);
    int result = 0;
    if (uint64_t{off} + len > data_len) {
      result = -EFAULT;  // changed under us since validation: skip it
    } else if (write(fd, data + off, len) < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;  // the rest waits for POLLOUT
      if (err == EBADF || err == EBADFD) {
        *fatal = err;
        break;
      }
      result = -err;
    }
    if (status != nullptr) status[i] = result;
    i++;
  }
  return i;
}


size_t ReadVnet(int fd, uint8_t* scratch, uint32_t* pending, uint8_t* data, size_t data_len,
                const uint32_t* offsets, uint32_t* lengths, size_t count, uint32_t capacity,
                double* stats, int* fatal) {
  *fatal = 0;
  double st[offload::kOffloadStatCount] = {};
  size_t filled = 0;
  size_t pend = Load(pending, 0);
  if (pend >= kReadScratchSize) pend = 0;  // changed under us since validation
  size_t reads_left = count + kReadVnetExtraReads;
  while (filled < count) {
    size_t n = pend;
    pend = 0;
    if (n == 0) {
      if (reads_left == 0) break;
      const ssize_t r = read(fd, scratch, kReadScratchSize);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) *fatal = errno;
        break;
      }
      reads_left--;
      st[offload::kStatTunPacketsRead]++;
      if (static_cast<size_t>(r) >= kReadScratchSize) {  // longer than 10 + 65535
        st[offload::kStatDropBase + offload::kDropPacketTooLarge]++;
        continue;
      }
      n = static_cast<size_t>(r);
    }
    const int got = offload::SplitPacket(scratch, n, data, data_len, offsets + filled,
                                         lengths + filled, count - filled, capacity);
    if (got == -offload::kDropTooManySegments && filled > 0) {
      pend = n;  // for the next call, with all its slots free
      break;
    }
    if (got < 0) {
      st[offload::kStatDropBase + static_cast<size_t>(-got)]++;
      continue;
    }
    Observe(st + offload::kStatReadSegmentsHistogram, static_cast<uint32_t>(got));
    if (scratch[1] != offload::kGsoNone) {
      st[offload::kStatTunSuperPackets]++;
      st[offload::kStatTunSegments] += got;
    } else if ((scratch[0] & offload::kVnetNeedsCsum) != 0) {
      st[offload::kStatTunChecksumsCompleted]++;
    }
    filled += static_cast<size_t>(got);
  }
  pending[0] = static_cast<uint32_t>(pend);
  if (stats != nullptr) {
    for (size_t i = 0; i < offload::kOffloadStatCount; i++) stats[i] += st[i];
  }
  return filled;
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("tunOpen", Napi::Function::New(env, OpenJs, "tunOpen"));
  exports.Set("tunRead", Napi::Function::New(env, ReadJs, "tunRead"));
  exports.Set("tunWrite", Napi::Function::New(env, WriteJs, "tunWrite"));
  exports.Set("tunReadVnet", Napi::Function::New(env, ReadVnetJs, "tunReadVnet"));
  exports.Set("tunSetVnetHeaderSize",
              Napi::Function::New(env, SetVnetHeaderSizeJs, "tunSetVnetHeaderSize"));
  exports.Set("tunSetOffload", Napi::Function::New(env, SetOffloadJs, "tunSetOffload"));
  exports.Set("setLinkMtu", Napi::Function::New(env, SetMtuJs, "setLinkMtu"));
  exports.Set("linkMtu", Napi::Function::New(env, LinkMtuJs, "linkMtu"));
  exports.Set("tunName", Napi::Function::New(env, NameJs, "tunName"));
  exports.Set("tunLink", Napi::Function::New(env, LinkJs, "tunLink"));
  exports.Set("TUN_IFF_VNET_HDR", Napi::Number::New(env, IFF_VNET_HDR));
  exports.Set("TUN_IFF_MULTI_QUEUE", Napi::Number::New(env, IFF_MULTI_QUEUE));
  exports.Set("TUN_F_CSUM", Napi::Number::New(env, kTunFCsum));
  exports.Set("TUN_F_TSO4", Napi::Number::New(env, kTunFTso4));
  exports.Set("TUN_F_TSO6", Napi::Number::New(env, kTunFTso6));
  exports.Set("TUN_F_TSO_ECN", Napi::Number::New(env, kTunFTsoEcn));
  exports.Set("TUN_F_UFO", Napi::Number::New(env, kTunFUfo));
  exports.Set("TUN_F_USO4", Napi::Number::New(env, kTunFUso4));
  exports.Set("TUN_F_USO6", Napi::Number::New(env, kTunFUso6));
  exports.Set("TUN_READ_SCRATCH_SIZE", Napi::Number::New(env, static_cast<double>(kReadScratchSize)));
}

}  // namespace tundra::tun
