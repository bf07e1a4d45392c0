// TUN devices through /dev/net/tun, link settings through interface ioctls.
#include "tun.h"

#include <fcntl.h>
#include <net/if.h>  // before any linux/ header: glibc's struct ifreq, IFF_UP
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
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

int SetUp(const char name[IFNAMSIZ], bool up) {
  return WithIfreq(name, [up](int s, struct ifreq* ifr) {
    if (ioctl(s, SIOCGIFFLAGS, ifr) < 0) return errno;
    const short flags = ifr->ifr_flags;
    const short want = static_cast<short>(up ? (flags | IFF_UP) : (flags & ~IFF_UP));
    if (want == flags) return 0;
    ifr->ifr_flags = want;
    return ioctl(s, SIOCSIFFLAGS, ifr) < 0 ? errno : 0;
  });
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

Napi::Value SetUpJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  char name[IFNAMSIZ];
  const int bad = GetIfName(env, info[0], "setLinkUp", name);
  if (bad < 0) return Napi::Value();
  bool up = false;
  if (!args::GetBool(env, info[1], "setLinkUp", "up", &up)) return Napi::Value();
  const std::string what = std::string("cannot set ") +
                           Quoted(info[0].As<Napi::String>().Utf8Value().c_str()) +
                           (up ? " up" : " down");
  const int err = bad > 0 ? bad : SetUp(name, up);
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
  exports.Set("setLinkUp", Napi::Function::New(env, SetUpJs, "setLinkUp"));
  exports.Set("linkMtu", Napi::Function::New(env, LinkMtuJs, "linkMtu"));
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
