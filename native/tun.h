// Linux TUN devices: open, link MTU/flags, and batched read/write of whole IP
// packets (IFF_TUN | IFF_NO_PI: no packet-info prefix). With IFF_VNET_HDR each
// read/write carries a 10-byte virtio_net_hdr first: ReadVnet splits what it
// reads (offload.h), writes need nothing new (offload::Coalesce makes items).
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

// One read() of a vnet-header TUN: 10 + 65535 bytes, plus one spare byte that
// tells a longer packet (dropped as packet_too_large) from one that fits.
constexpr size_t kReadScratchSize = 10 + 65535 + 1;

// ReadVnet: reads packets (vnet header + up to 64 KiB, GSO super-packets
// included) into scratch (kReadScratchSize bytes) and splits each into slots
// data[offsets[j], offsets[j] + capacity), j < count, with offload::
// SplitPacket. *pending is the length of a read packet still waiting in
// scratch (0: none): it is split first, and a packet that needs more slots
// than remain after some were filled stays pending for the next call. Returns
// the number of slots filled; stops at EAGAIN, at count, or after
// count + kReadVnetExtraReads reads (a flood of dropped packets cannot keep
// the caller here; it returns what it has, possibly 0, and the fd is still
// readable). stats (may be null) gets offload::kOffloadStatCount increments.
// *fatal as in ReadBatch.
constexpr size_t kReadVnetExtraReads = 256;
size_t ReadVnet(int fd, uint8_t* scratch, uint32_t* pending, uint8_t* data, size_t data_len,
                const uint32_t* offsets, uint32_t* lengths, size_t count, uint32_t capacity,
                double* stats, int* fatal);

// Adds tunOpen, tunRead, tunWrite, tunReadVnet, tunSetVnetHeaderSize,
// tunSetOffload, tunName, tunLink, setLinkMtu, linkMtu and the TUN
// constants.
void Init(Napi::Env env, Napi::Object exports);

}  // namespace tundra::tun
