// closeFd: the one way to close an fd from tunOpen or udpOpen.
#include "fd.h"

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

}  // namespace

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("closeFd", Napi::Function::New(env, CloseFdJs, "closeFd"));
}

}  // namespace tundra::fd
