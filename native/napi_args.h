// Shared by every part of the addon (aead.cc, fd.cc, netlink.cc, noise_crypto.cc, offload.cc, tun.cc,
// udp.cc, watch.cc): argument checks for the N-API glue and errno-carrying Error objects.
// The batch calls' own checks (packet arrays, counts, slots) are in batch_args.h.
//
// Malformed calls throw TypeError (wrong type) or RangeError (value out of
// range) before any system call; system errors throw a plain Error with
// .code ('EPERM'), .errno (negative, as node's own errors) and .syscall.
#pragma once

#include <napi.h>

#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace tundra::args {

// "EPERM" for EPERM; "E<n>" for a number glibc has no name for.
inline std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? std::string(name) : "E" + std::to_string(err);
}

inline std::string ErrnoText(int err) {
  char buf[128];
  // GNU strerror_r: returns a pointer that may or may not be buf.
  return std::string(strerror_r(err, buf, sizeof buf));
}

// Throws Error("<what>: <strerror> (<ENAME>)") with code/errno/syscall set.
inline void ThrowErrno(napi_env env, int err, const char* syscall, const std::string& what) {
  Napi::Env e(env);
  Napi::Error error =
      Napi::Error::New(e, what + ": " + ErrnoText(err) + " (" + ErrnoName(err) + ")");
  error.Set("code", Napi::String::New(e, ErrnoName(err)));
  error.Set("errno", Napi::Number::New(e, -err));
  error.Set("syscall", Napi::String::New(e, syscall));
  error.ThrowAsJavaScriptException();
}

inline bool ThrowType(napi_env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return false;
}

inline bool ThrowRange(napi_env env, const std::string& msg) {
  Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
  return false;
}

inline std::string NumberText(napi_env env, double v) {
  return Napi::Number::New(env, v).ToString().Utf8Value();
}

// An integer Number in [min, max].
inline bool GetInt(napi_env env, const Napi::Value& v, const char* fn, const char* name,
                   double min, double max, double* out) {
  if (!v.IsNumber()) return ThrowType(env, std::string(fn) + ": " + name + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || std::floor(d) != d) {
    return ThrowRange(env, std::string(fn) + ": " + name + " " + NumberText(env, d) +
                               " is not an integer in [" + NumberText(env, min) + ", " +
                               NumberText(env, max) + "]");
  }
  *out = d;
  return true;
}

inline bool GetFd(napi_env env, const Napi::Value& v, const char* fn, int* fd) {
  double d = 0;
  if (!GetInt(env, v, fn, "fd", 0, 2147483647.0, &d)) return false;
  *fd = static_cast<int>(d);
  return true;
}

inline bool GetUint32(napi_env env, const Napi::Value& v, const char* fn, const char* name,
                      uint32_t* out) {
  double d = 0;
  if (!GetInt(env, v, fn, name, 0, 4294967295.0, &d)) return false;
  *out = static_cast<uint32_t>(d);
  return true;
}

inline bool GetBool(napi_env env, const Napi::Value& v, const char* fn, const char* name,
                    bool* out) {
  if (!v.IsBoolean()) return ThrowType(env, std::string(fn) + ": " + name + " must be a boolean");
  *out = v.As<Napi::Boolean>().Value();
  return true;
}

struct View {
  uint8_t* data = nullptr;
  size_t length = 0;  // in elements
};

// Any view of the right element type: Buffer, subarray, SharedArrayBuffer-
// backed. napi_get_typedarray_info's data already includes the byteOffset.
inline bool GetArray(napi_env env, napi_value v, napi_typedarray_type want, const char* fn,
                     const char* name, const char* type_name, View* out) {
  bool is = false;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (v == nullptr || napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != want) {
    return ThrowType(env, std::string(fn) + ": " + name + " must be a " + type_name);
  }
  out->data = static_cast<uint8_t*>(data);
  out->length = length;
  return true;
}

// An interface name as the kernel takes it: a string of at most 15 bytes
// without NUL (IFNAMSIZ is 16 with the terminator); empty only if allow_empty.
// Copies it into out[16]. Returns 0, or ENAMETOOLONG / EINVAL for the
// caller's error message; throws TypeError (and returns -1) for a non-string.
inline int GetIfName(napi_env env, const Napi::Value& v, const char* fn, char out[16],
                     bool allow_empty = false) {
  if (!v.IsString()) {
    ThrowType(env, std::string(fn) + ": name must be a string");
    return -1;
  }
  const std::string s = v.As<Napi::String>().Utf8Value();
  std::memset(out, 0, 16);
  if (s.size() >= 16) return ENAMETOOLONG;
  if ((s.empty() && !allow_empty) || s.find('\0') != std::string::npos) return EINVAL;
  std::memcpy(out, s.data(), s.size());
  return 0;
}

// One read of a SharedArrayBuffer-backed descriptor: the value we check must
// be the value we use.
inline uint32_t Load(const uint32_t* a, size_t i) {
  return static_cast<const volatile uint32_t*>(a)[i];
}

}  // namespace tundra::args
