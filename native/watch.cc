// FdWatcher: a uv_poll_t on the calling env's loop, reporting to a JS callback.
//
// Lifetimes. The uv handle must stay allocated until uv_close's callback,
// which comes on a later loop turn, possibly after the JS object was collected
// (GC finalizer) or while the env is being torn down (worker exit). So the
// handle lives in a separate Poll, owned by libuv from uv_close on and freed
// in OnClosed; the Watcher (the JS object's C++ side) only points at it.
//
// Env teardown (a worker exiting with an open watcher) uses an async cleanup
// hook: node keeps turning the loop until the hook reports completion, which
// OnClosed does, so the loop is never closed with our handle still on it
// (that would abort the process).
//
// Reachability. While watching, the JS object is held strongly (like node's
// own handles), so an active watcher works even if the caller drops it; when
// stopped it is weak and a forgotten watcher is collected and closed. The
// callback is a non-enumerable property of the JS object rather than a
// strong native reference, so a callback that captures the watcher does not
// keep it alive forever.
#include "watch.h"

#include <sys/socket.h>
#include <fcntl.h>
#include <uv.h>

#include <cerrno>
#include <string>

#include "napi_args.h"

namespace tundra::watch {
namespace {

using args::GetFd;
using args::ThrowErrno;
using args::ThrowType;

constexpr const char* kCallbackKey = "callback";

class Watcher;

struct Poll {
  uv_poll_t handle;
  napi_env env = nullptr;
  Watcher* owner = nullptr;  // null once the watcher closed (or was collected)
  napi_async_cleanup_hook_handle hook = nullptr;
  int fd = -1;
  bool forgotten = false;  // its fd was closed by closeFd (ForgetFd)
  // This thread's open watchers, for ForgetFd (intrusive: no allocation).
  Poll* prev = nullptr;
  Poll* next = nullptr;
};

thread_local Poll* tls_polls = nullptr;

void Link(Poll* p) {
  p->next = tls_polls;
  if (tls_polls != nullptr) tls_polls->prev = p;
  tls_polls = p;
}

void Unlink(Poll* p) {
  if (p->prev != nullptr) p->prev->next = p->next;
  if (p->next != nullptr) p->next->prev = p->prev;
  if (tls_polls == p) tls_polls = p->next;
  p->prev = p->next = nullptr;
}

class Watcher : public Napi::ObjectWrap<Watcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatcher",
                       {InstanceMethod<&Watcher::WatchJs>("watch"),
                        InstanceMethod<&Watcher::CloseJs>("close"),
                        InstanceMethod<&Watcher::RefJs>("ref"),
                        InstanceMethod<&Watcher::UnrefJs>("unref"),
                        InstanceAccessor<&Watcher::FdJs>("fd"),
                        InstanceAccessor<&Watcher::ClosedJs>("closed")});
  }

  // new FdWatcher(fd, callback(readable, writable, error))
  explicit Watcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Watcher>(info) {
    napi_env env = info.Env();
    int fd = -1;
    if (!GetFd(env, info[0], "FdWatcher", &fd)) return;
    if (!info[1].IsFunction()) {
      ThrowType(env, "FdWatcher: onEvent must be a function");
      return;
    }
    fd_ = fd;
    // libuv does not notice a second poll handle on one fd until both are
    // started, and then delivers events to only one of them.
    for (Poll* q = tls_polls; q != nullptr; q = q->next) {
      if (q->fd == fd && !q->forgotten) {
        ThrowErrno(env, EEXIST, "uv_poll_init",
                   "cannot watch fd " + std::to_string(fd) + ": it already has a watcher");
        return;
      }
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      Napi::Error::New(env, "FdWatcher: no event loop").ThrowAsJavaScriptException();
      return;
    }
    Poll* p = new Poll();
    // Fails (nothing registered yet) for a closed fd (EBADF) or one epoll
    // cannot watch, such as a regular file (EPERM).
    const int rc = uv_poll_init(loop, &p->handle, fd);
    if (rc < 0) {
      delete p;
      ThrowErrno(env, -rc, "uv_poll_init", "cannot watch fd " + std::to_string(fd));
      return;
    }
    p->handle.data = p;
    p->env = env;
    p->owner = this;
    p->fd = fd;
    poll_ = p;
    Link(p);
    napi_value name;
    if (napi_create_string_utf8(env, "tundra:FdWatcher", NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_async_init(env, nullptr, name, &async_) != napi_ok ||
        napi_add_async_cleanup_hook(env, OnEnvCleanup, p, &p->hook) != napi_ok) {
      Shutdown(false);
      if (!Napi::Env(env).IsExceptionPending()) {
        Napi::Error::New(env, "FdWatcher: cannot set up the watcher").ThrowAsJavaScriptException();
      }
      return;
    }
    napi_property_descriptor cb = {kCallbackKey, nullptr, nullptr, nullptr, nullptr,
                                   info[1],      napi_default, nullptr};
    napi_define_properties(env, info.This(), 1, &cb);
  }

  ~Watcher() override { Shutdown(true); }

  // For ForgetFd: the fd is about to be closed; stop, and refuse watch() later.
  void Forget() {
    Stop();
    poll_->forgotten = true;
  }

 private:
  // watch(readable, writable): both false stops watching.
  Napi::Value WatchJs(const Napi::CallbackInfo& info) {
    napi_env env = info.Env();
    bool readable = false, writable = false;
    if (!args::GetBool(env, info[0], "watch", "readable", &readable) ||
        !args::GetBool(env, info[1], "watch", "writable", &writable)) {
      return Napi::Value();
    }
    if (poll_ == nullptr) return Napi::Value();  // closed: a late call is harmless
    if (poll_->forgotten) {
      ThrowErrno(env, EBADF, "uv_poll_start", "cannot watch fd " + std::to_string(fd_) + ": it was closed");
      return Napi::Value();
    }
    const int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
    if (events == 0) {
      Stop();
      return Napi::Value();
    }
    // libuv aborts the process if epoll_ctl fails on a closed fd when the
    // loop applies the change: refuse here instead. (closeFd stops watchers
    // of its fd; this catches fds closed some other way.)
    if (fcntl(fd_, F_GETFD) < 0) {
      ThrowErrno(env, errno, "uv_poll_start", "cannot watch fd " + std::to_string(fd_));
      return Napi::Value();
    }
    const int rc = uv_poll_start(&poll_->handle, events, OnPoll);
    if (rc < 0) {
      ThrowErrno(env, -rc, "uv_poll_start", "cannot watch fd " + std::to_string(fd_));
      return Napi::Value();
    }
    events_ = events;
    SetStrong(true);
    return Napi::Value();
  }

  Napi::Value CloseJs(const Napi::CallbackInfo&) {
    Shutdown(false);
    return Napi::Value();
  }

  // ref()/unref(): whether an active watcher keeps the loop (process, worker) alive.
  Napi::Value RefJs(const Napi::CallbackInfo&) {
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
    return Napi::Value();
  }

  Napi::Value UnrefJs(const Napi::CallbackInfo&) {
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
    return Napi::Value();
  }

  Napi::Value FdJs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  Napi::Value ClosedJs(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), poll_ == nullptr);
  }

  void Stop() {
    if (poll_ != nullptr) uv_poll_stop(&poll_->handle);
    events_ = 0;
    SetStrong(false);
  }

  void SetStrong(bool strong) {
    if (strong == strong_) return;
    strong_ = strong;
    if (strong) {
      Ref();
    } else {
      Unref();
    }
  }

  // Idempotent. From close(), the env cleanup hook, or the destructor (GC or
  // env teardown: the reference is already going away, so no Unref there).
  void Shutdown(bool finalizing) {
    Poll* p = poll_;
    if (p == nullptr) return;
    poll_ = nullptr;
    events_ = 0;
    p->owner = nullptr;
    Unlink(p);
    uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), OnClosed);  // also stops it
    if (finalizing) {
      strong_ = false;
    } else {
      SetStrong(false);
    }
    // napi_make_callback is still using the async context when close() is
    // called from inside the callback: OnPoll destroys it afterwards.
    if (!in_callback_) DestroyAsync();
  }

  void DestroyAsync() {
    if (async_ == nullptr) return;
    napi_async_destroy(Env(), async_);
    async_ = nullptr;
  }

  static void OnClosed(uv_handle_t* handle) {
    Poll* p = static_cast<Poll*>(handle->data);
    // Lets node finish the env teardown if it is waiting for us; otherwise
    // just unregisters the hook.
    if (p->hook != nullptr) napi_remove_async_cleanup_hook(p->hook);
    delete p;
  }

  static void OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) {
    Poll* p = static_cast<Poll*>(arg);
    // Not yet closing: close now; OnClosed then completes the hook. Already
    // closing: OnClosed is on its way and will complete it.
    if (p->owner != nullptr) p->owner->Shutdown(false);
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    Poll* p = static_cast<Poll*>(handle->data);
    Watcher* self = p->owner;
    if (self == nullptr) return;
    self->Dispatch(status, events);
  }

  void Dispatch(int status, int events) {
    napi_env env = poll_->env;
    // libuv calls us from the loop with no V8 handle scope open.
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    // Taken first: the wrapper (held strongly while watching) must stay
    // reachable through this local for the rest of the call.
    napi_value object = nullptr;
    if (napi_get_reference_value(env, static_cast<napi_ref>(*this), &object) != napi_ok ||
        object == nullptr) {
      napi_close_handle_scope(env, scope);
      return;
    }
    bool readable = (events & UV_READABLE) != 0;
    bool writable = (events & UV_WRITABLE) != 0;
    const bool error = status < 0;
    if (error) {
      // POLLERR; libuv has stopped the handle. Report it as the events being
      // watched, so a caller that just retries its I/O meets the error.
      readable = (events_ & UV_READABLE) != 0;
      writable = (events_ & UV_WRITABLE) != 0;
      // A socket's pending error (sk_err) is cleared by reading SO_ERROR and
      // the socket remains usable: keep watching. Anything else (a TUN whose
      // interface was deleted) stays in error for good: stop, so the loop
      // does not spin; watch() resumes.
      int so_error = 0;
      socklen_t len = sizeof so_error;
      if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &len) == 0 &&
          uv_poll_start(&poll_->handle, events_, OnPoll) == 0) {
        // still watching
      } else {
        events_ = 0;
        SetStrong(false);
      }
    }
    napi_value callback = nullptr;
    napi_value argv[3];
    if (napi_get_named_property(env, object, kCallbackKey, &callback) == napi_ok &&
        napi_get_boolean(env, readable, &argv[0]) == napi_ok &&
        napi_get_boolean(env, writable, &argv[1]) == napi_ok &&
        napi_get_boolean(env, error, &argv[2]) == napi_ok) {
      in_callback_ = true;
      napi_value result;
      // A callback scope: process.nextTick and microtasks run after it, and
      // async_hooks see a resource.
      const napi_status st = napi_make_callback(env, async_, object, callback, 3, argv, &result);
      in_callback_ = false;
      if (st != napi_ok) {
        // A throw in the callback becomes an uncaught exception, as from any
        // node callback ('uncaughtException', or the process / worker ends
        // with it). No exception pending means node refused to run JS (the
        // env is shutting down): nothing to report.
        bool pending = false;
        napi_value exception;
        if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
            napi_get_and_clear_last_exception(env, &exception) == napi_ok) {
          napi_fatal_exception(env, exception);
        }
      }
      // close() ran inside the callback: finish what it deferred.
      if (poll_ == nullptr) DestroyAsync();
    }
    napi_close_handle_scope(env, scope);
  }

  Poll* poll_ = nullptr;
  napi_async_context async_ = nullptr;
  int fd_ = -1;
  int events_ = 0;
  bool strong_ = false;
  bool in_callback_ = false;
};

}  // namespace

void ForgetFd(int fd) {
  for (Poll* p = tls_polls; p != nullptr; p = p->next) {
    if (p->fd == fd && !p->forgotten && p->owner != nullptr) p->owner->Forget();
  }
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("FdWatcher", Watcher::Define(env));
}

}  // namespace tundra::watch
