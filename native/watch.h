// FdWatcher: readiness of a TUN or UDP fd from the env's own libuv loop
// (uv_poll_t), so waiting happens in the event loop: no spinning, no blocking,
// no extra thread. Context-aware: works on the main thread and in workers.
#pragma once

#include <napi.h>

namespace tundra::watch {

// Stops every watcher of `fd` on the calling thread's loop, before the fd is
// closed: libuv aborts the process if it later meets a watched fd that was
// closed (epoll_ctl EBADF/ENOENT). The watchers stay open but inert; watch()
// on them throws EBADF. closeFd calls this.
void ForgetFd(int fd);

// Adds the FdWatcher class to the addon's exports.
void Init(Napi::Env env, Napi::Object exports);

}  // namespace tundra::watch
