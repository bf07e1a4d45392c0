// netlinkOpen(groups) -> fd: a non-blocking, close-on-exec NETLINK_ROUTE socket bound
// to the multicast groups in the bit mask `groups` (RTMGRP_*), with a large receive
// buffer so a burst of route changes is not lost (ENOBUFS says when it was).
// netlinkSend(fd, data): sends one request to the kernel.
// netlinkRecv(fd, buf) -> bytes read, 0 when nothing is waiting (EAGAIN), or -ENOBUFS
// when the kernel dropped messages for a full buffer (events lost: look again at
// everything). Other errors throw.
#include "netlink.h"

#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "napi_args.h"

namespace tundra::netlink {
namespace {

constexpr int kReceiveBuffer = 1 << 20;

Napi::Value OpenJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  uint32_t groups = 0;
  if (!args::GetUint32(env, info[0], "netlinkOpen", "groups", &groups)) return Napi::Value();
  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    args::ThrowErrno(env, errno, "socket", "cannot open a netlink socket");
    return Napi::Value();
  }
  // Best effort, as the UDP buffers: without CAP_NET_ADMIN the kernel caps it.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kReceiveBuffer, sizeof kReceiveBuffer) < 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kReceiveBuffer, sizeof kReceiveBuffer);
  }
  sockaddr_nl addr;
  std::memset(&addr, 0, sizeof addr);
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = groups;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    const int err = errno;
    close(fd);
    args::ThrowErrno(env, err, "bind", "cannot bind a netlink socket");
    return Napi::Value();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value SendJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = -1;
  args::View data;
  if (!args::GetFd(env, info[0], "netlinkSend", &fd) ||
      !args::GetArray(env, info[1], napi_uint8_array, "netlinkSend", "data", "Uint8Array", &data)) {
    return Napi::Value();
  }
  sockaddr_nl kernel;
  std::memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(fd, data.data, data.length, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  } while (n < 0 && errno == EINTR);
  if (n < 0) args::ThrowErrno(env, errno, "sendto", "cannot send a netlink request");
  return Napi::Value();
}

Napi::Value RecvJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = -1;
  args::View buf;
  if (!args::GetFd(env, info[0], "netlinkRecv", &fd) ||
      !args::GetArray(env, info[1], napi_uint8_array, "netlinkRecv", "buf", "Uint8Array", &buf)) {
    return Napi::Value();
  }
  ssize_t n;
  do {
    n = recv(fd, buf.data, buf.length, 0);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
  if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, 0);
  if (errno == ENOBUFS) return Napi::Number::New(env, -ENOBUFS);
  args::ThrowErrno(env, errno, "recv", "cannot read the netlink socket");
  return Napi::Value();
}

}  // namespace

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("netlinkOpen", Napi::Function::New(env, OpenJs, "netlinkOpen"));
  exports.Set("netlinkSend", Napi::Function::New(env, SendJs, "netlinkSend"));
  exports.Set("netlinkRecv", Napi::Function::New(env, RecvJs, "netlinkRecv"));
}

}  // namespace tundra::netlink
