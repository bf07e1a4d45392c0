// Argument checks shared by the batch calls (tun.cc, udp.cc, offload.cc): the packet
// arrays (data, offsets, lengths), the count that must fit them, the slots that must
// lie inside data, the optional status and stats arrays. One place, so every call
// words its errors the same way (tests check the messages).
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "napi_args.h"

namespace tundra::args {

// Packet i is data[offsets[i], offsets[i] + lengths[i]) (or + capacity for slots to
// read into).
struct Packets {
  View data, offsets, lengths;

  const uint32_t* Offsets() const { return reinterpret_cast<const uint32_t*>(offsets.data); }
  uint32_t* Lengths() const { return reinterpret_cast<uint32_t*>(lengths.data); }
};

// data (Uint8Array), offsets and lengths (Uint32Array) at info[at], info[at + 1], info[at + 2].
inline bool GetPackets(const Napi::CallbackInfo& info, size_t at, const char* fn, Packets* p) {
  napi_env env = info.Env();
  return GetArray(env, info[at], napi_uint8_array, fn, "data", "Uint8Array", &p->data) &&
         GetArray(env, info[at + 1], napi_uint32_array, fn, "offsets", "Uint32Array", &p->offsets) &&
         GetArray(env, info[at + 2], napi_uint32_array, fn, "lengths", "Uint32Array", &p->lengths);
}

// count rows of offsets and lengths exist.
inline bool CountFits(napi_env env, const char* fn, size_t count, const Packets& p) {
  if (count <= p.offsets.length && count <= p.lengths.length) return true;
  return ThrowRange(env, std::string(fn) + ": count " + std::to_string(count) +
                             " exceeds offsets.length " + std::to_string(p.offsets.length) +
                             " or lengths.length " + std::to_string(p.lengths.length));
}

// The common head of tunRead/tunWrite (fd, data, offsets, lengths, count) and, with
// addr_stride > 0, of udpRecv/udpSend (fd, data, offsets, lengths, addrs, count), where
// count must also fit the addrs records of addr_stride bytes.
struct Batch : Packets {
  int fd = -1;
  View addrs;
  size_t count = 0;
};

inline bool GetBatch(const Napi::CallbackInfo& info, const char* fn, size_t addr_stride, Batch* b) {
  napi_env env = info.Env();
  if (!GetFd(env, info[0], fn, &b->fd) || !GetPackets(info, 1, fn, b)) return false;
  size_t at = 4;
  if (addr_stride > 0 &&
      !GetArray(env, info[at++], napi_uint8_array, fn, "addrs", "Uint8Array", &b->addrs)) {
    return false;
  }
  uint32_t count = 0;
  if (!GetUint32(env, info[at], fn, "count", &count)) return false;
  if (addr_stride == 0) {
    if (!CountFits(env, fn, count, *b)) return false;
  } else if (count > b->offsets.length || count > b->lengths.length ||
             count > b->addrs.length / addr_stride) {
    return ThrowRange(env, std::string(fn) + ": count " + std::to_string(count) +
                               " exceeds offsets.length " + std::to_string(b->offsets.length) +
                               ", lengths.length " + std::to_string(b->lengths.length) +
                               " or the " + std::to_string(b->addrs.length / addr_stride) +
                               " records of addrs");
  }
  b->count = count;
  return true;
}

// Every packet's [offsets[i], offsets[i] + size) lies inside data, where size is
// lengths[i], or `capacity` when lengths is null (slots to read into). A bad one is
// a caller bug: the whole call is rejected before any packet moves.
inline bool CheckPackets(napi_env env, const char* fn, const uint32_t* offsets,
                         const uint32_t* lengths, uint32_t capacity, size_t count,
                         size_t data_len) {
  for (size_t i = 0; i < count; i++) {
    const uint64_t end = uint64_t{Load(offsets, i)} + (lengths ? Load(lengths, i) : capacity);
    if (end > data_len) {
      return ThrowRange(env, std::string(fn) + ": " + (lengths ? "packet " : "slot ") +
                                 std::to_string(i) + ": offset + " +
                                 (lengths ? "length" : "capacity") + " = " + std::to_string(end) +
                                 " exceeds data.length " + std::to_string(data_len));
    }
  }
  return true;
}

// The slots of a read (offset + capacity) or the packets of a write (offset + length),
// count of them, lie inside data.
inline bool CheckSlots(napi_env env, const char* fn, const Packets& p, uint32_t capacity,
                       size_t count) {
  return CheckPackets(env, fn, p.Offsets(), nullptr, capacity, count, p.data.length);
}
inline bool CheckWrites(napi_env env, const char* fn, const Packets& p, size_t count) {
  return CheckPackets(env, fn, p.Offsets(), p.Lengths(), 0, count, p.data.length);
}

// The optional per-packet status array (Int32Array, at least `count` long) at info[index].
inline bool GetStatus(const Napi::CallbackInfo& info, size_t index, const char* fn, size_t count,
                      View* out) {
  napi_env env = info.Env();
  if (info.Length() <= index || info[index].IsUndefined()) return true;
  if (!GetArray(env, info[index], napi_int32_array, fn, "status", "Int32Array", out)) return false;
  if (out->length < count) {
    return ThrowRange(env, std::string(fn) + ": status.length " + std::to_string(out->length) +
                               " is less than count " + std::to_string(count));
  }
  return true;
}

// An optional Float64Array of counters with at least `need` entries; *out stays null
// when v is undefined.
inline bool GetStats(napi_env env, const Napi::Value& v, const char* fn, const char* name,
                     size_t need, double** out) {
  *out = nullptr;
  if (v.IsUndefined()) return true;
  View view;
  if (!GetArray(env, v, napi_float64_array, fn, name, "Float64Array", &view)) return false;
  if (view.length < need) {
    return ThrowRange(env, std::string(fn) + ": " + name + ".length " +
                               std::to_string(view.length) + " is less than " + std::to_string(need));
  }
  *out = reinterpret_cast<double*>(view.data);
  return true;
}

// What a batch call returns: the number of packets it moved, or, when `fatal` (an
// errno) stopped it and `thrown`, an Error "<what><fd>: <strerror> (<ENAME>)". Reads
// throw only when nothing was read (what was read comes first; the next call meets
// the error), writes whenever the fd is unusable. The message is built only then.
inline Napi::Value BatchResult(napi_env env, size_t n, bool thrown, int fatal, const char* syscall,
                               const char* what, int fd) {
  if (thrown && fatal != 0) {
    ThrowErrno(env, fatal, syscall, what + std::to_string(fd));
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// A JS array of counter or drop names, exported next to the counters they name.
inline Napi::Array Names(Napi::Env env, const char* const* names, size_t n) {
  Napi::Array a = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; i++) a.Set(static_cast<uint32_t>(i), Napi::String::New(env, names[i]));
  return a;
}
inline Napi::Array Names(Napi::Env env, std::initializer_list<const char*> names) {
  return Names(env, names.begin(), names.size());
}

}  // namespace tundra::args
