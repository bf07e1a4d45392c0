// closeFd: the one way to close an fd from tunOpen or udpOpen; socketBufferSizes for metrics.
#include "fd.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "napi_args.h"
#include "watch.h"

namespace tundra::fd {
namespace {

// closeFd(fd): throws EBADF for an fd that is not open.
Napi::Value CloseFdJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = -1;
  if (!args::GetFd(env, info[0], "closeFd", &fd)) return Napi::Value();
  watch::ForgetFd(fd);  // a watched fd closed under libuv aborts the process
  // On Linux the fd is released even when close() reports EINTR: never retry.
  if (close(fd) < 0 && errno != EINTR) {
    args::ThrowErrno(env, errno, "close", "cannot close fd " + std::to_string(fd));
  }
  return Napi::Value();
}

// socketBufferSizes(fd) -> [SO_RCVBUF, SO_SNDBUF]: what the kernel granted (it
// reports twice the usable size, as it books its overhead there).
Napi::Value SocketBufferSizesJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = -1;
  if (!args::GetFd(env, info[0], "socketBufferSizes", &fd)) return Napi::Value();
  int sizes[2] = {0, 0};
  const int options[2] = {SO_RCVBUF, SO_SNDBUF};
  for (int i = 0; i < 2; i++) {
    socklen_t len = sizeof(int);
    if (getsockopt(fd, SOL_SOCKET, options[i], &sizes[i], &len) < 0) {
      args::ThrowErrno(env, errno, "getsockopt", "cannot read the buffer sizes of fd " + std::to_string(fd));
      return Napi::Value();
    }
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t{0}, Napi::Number::New(env, sizes[0]));
  out.Set(uint32_t{1}, Napi::Number::New(env, sizes[1]));
  return out;
}

}  // namespace

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("closeFd", Napi::Function::New(env, CloseFdJs, "closeFd"));
  exports.Set("socketBufferSizes", Napi::Function::New(env, SocketBufferSizesJs, "socketBufferSizes"));
}

}  // namespace tundra::fd
