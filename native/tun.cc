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

#include "napi_args.h"
#include "watch.h"

namespace tundra::tun {
namespace {

using args::CheckPackets;
using args::GetArray;
using args::GetFd;
using args::GetStatus;
using args::GetIfName;
using args::GetUint32;
using args::Load;
using args::ThrowErrno;
using args::ThrowRange;
using args::ThrowType;
using args::View;

// Flags a caller may add to IFF_TUN | IFF_NO_PI. IFF_VNET_HDR is for the
// offload issue (the read/write paths here do not handle the 10-byte header
// yet, so the TS wrapper does not pass it); IFF_MULTI_QUEUE lets several fds
// (one per reader thread) attach to one interface.
constexpr uint32_t kExtraFlagsAllowed = IFF_VNET_HDR | IFF_MULTI_QUEUE;

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

Napi::Value CloseFdJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = -1;
  if (!GetFd(env, info[0], "closeFd", &fd)) return Napi::Value();
  watch::ForgetFd(fd);  // a watched fd closed under libuv aborts the process
  // On Linux the fd is released even when close() reports EINTR: never retry.
  if (close(fd) < 0 && errno != EINTR) {
    ThrowErrno(env, errno, "close", "cannot close fd " + std::to_string(fd));
  }
  return Napi::Value();
}

// Common checks of tunRead/tunWrite: fd, data, offsets, lengths, count.
struct BatchArgs {
  int fd = -1;
  View data, offsets, lengths;
  size_t count = 0;
};

bool GetBatchArgs(const Napi::CallbackInfo& info, const char* fn, BatchArgs* a) {
  napi_env env = info.Env();
  if (!GetFd(env, info[0], fn, &a->fd) ||
      !GetArray(env, info[1], napi_uint8_array, fn, "data", "Uint8Array", &a->data) ||
      !GetArray(env, info[2], napi_uint32_array, fn, "offsets", "Uint32Array", &a->offsets) ||
      !GetArray(env, info[3], napi_uint32_array, fn, "lengths", "Uint32Array", &a->lengths)) {
    return false;
  }
  uint32_t count = 0;
  if (!GetUint32(env, info[4], fn, "count", &count)) return false;
  if (count > a->offsets.length || count > a->lengths.length) {
    return ThrowRange(env, std::string(fn) + ": count " + std::to_string(count) +
                               " exceeds offsets.length " + std::to_string(a->offsets.length) +
                               " or lengths.length " + std::to_string(a->lengths.length));
  }
  a->count = count;
  return true;
}

// tunRead(fd, data, offsets, lengths, count, capacity) -> packets read
Napi::Value ReadJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  BatchArgs a;
  if (!GetBatchArgs(info, "tunRead", &a)) return Napi::Value();
  uint32_t capacity = 0;
  if (!GetUint32(env, info[5], "tunRead", "capacity", &capacity)) return Napi::Value();
  const uint32_t* offsets = reinterpret_cast<const uint32_t*>(a.offsets.data);
  // A bad slot is a caller bug: reject the call before reading anything, so no
  // packet is taken from the device and then lost.
  if (!CheckPackets(env, "tunRead", offsets, nullptr, capacity, a.count, a.data.length)) {
    return Napi::Value();
  }
  int fatal = 0;
  const size_t n = ReadBatch(a.fd, a.data.data, a.data.length, offsets,
                             reinterpret_cast<uint32_t*>(a.lengths.data), a.count, capacity,
                             &fatal);
  if (n == 0 && fatal != 0) {
    ThrowErrno(env, fatal, "read", "cannot read from TUN fd " + std::to_string(a.fd));
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// tunWrite(fd, data, offsets, lengths, count, status?) -> packets consumed
Napi::Value WriteJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  BatchArgs a;
  if (!GetBatchArgs(info, "tunWrite", &a)) return Napi::Value();
  View status;
  if (!GetStatus(info, 5, "tunWrite", a.count, &status)) return Napi::Value();
  const uint32_t* offsets = reinterpret_cast<const uint32_t*>(a.offsets.data);
  const uint32_t* lengths = reinterpret_cast<const uint32_t*>(a.lengths.data);
  if (!CheckPackets(env, "tunWrite", offsets, lengths, 0, a.count, a.data.length)) {
    return Napi::Value();
  }
  int fatal = 0;
  const size_t n = WriteBatch(a.fd, a.data.data, a.data.length, offsets, lengths, a.count,
                              reinterpret_cast<int32_t*>(status.data), &fatal);
  if (fatal != 0) {
    ThrowErrno(env, fatal, "write", "cannot write to TUN fd " + std::to_string(a.fd));
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(n));
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

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("tunOpen", Napi::Function::New(env, OpenJs, "tunOpen"));
  exports.Set("tunRead", Napi::Function::New(env, ReadJs, "tunRead"));
  exports.Set("tunWrite", Napi::Function::New(env, WriteJs, "tunWrite"));
  exports.Set("setLinkMtu", Napi::Function::New(env, SetMtuJs, "setLinkMtu"));
  exports.Set("setLinkUp", Napi::Function::New(env, SetUpJs, "setLinkUp"));
  exports.Set("linkMtu", Napi::Function::New(env, LinkMtuJs, "linkMtu"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFdJs, "closeFd"));
  exports.Set("TUN_IFF_VNET_HDR", Napi::Number::New(env, IFF_VNET_HDR));
  exports.Set("TUN_IFF_MULTI_QUEUE", Napi::Number::New(env, IFF_MULTI_QUEUE));
}

}  // namespace tundra::tun
