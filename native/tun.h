// Linux TUN devices: open, link MTU/flags, and batched read/write of whole IP
// packets (IFF_TUN | IFF_NO_PI: no packet-info prefix, no vnet header yet).
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace tundra::tun {

// Raw batch entry points, usable from other native code (e.g. an I/O loop
// that never returns to JS). The N-API glue validates every row first; each
// row is re-read once and re-checked at use anyway, since the descriptor
// arrays may live in a SharedArrayBuffer that another thread can change.
//
// ReadBatch: packet i goes to data[offsets[i], offsets[i] + capacity), its
// length to lengths[i]. Returns the number of packets read; stops at EAGAIN
// (nothing more ready). A packet that did not fit in capacity (the kernel
// would cut it silently; a spare byte past the slot detects that) gets
// lengths[i] = 0. *fatal is 0, or the errno
// that stopped the batch (the device is gone): the packets read before it are
// returned, and the next call meets the error again.
size_t ReadBatch(int fd, uint8_t* data, size_t data_len, const uint32_t* offsets,
                 uint32_t* lengths, size_t count, uint32_t capacity, int* fatal);

// WriteBatch: writes data[offsets[i], offsets[i] + lengths[i]) in order and
// returns how many packets were consumed. Stops early only on EAGAIN. A
// packet the kernel rejects (EINVAL for a bad IP version, EIO when the link is
// down, ...) is consumed and gets status[i] = -errno; a written one gets 0
// (status may be null). *fatal is set (and the return value is meaningless)
// when the fd itself is unusable: EBADF, or EBADFD once the interface was
// deleted.
size_t WriteBatch(int fd, const uint8_t* data, size_t data_len, const uint32_t* offsets,
                  const uint32_t* lengths, size_t count, int32_t* status, int* fatal);

// Adds tunOpen, tunRead, tunWrite, setLinkMtu, setLinkUp, linkMtu, closeFd.
void Init(Napi::Env env, Napi::Object exports);

}  // namespace tundra::tun
