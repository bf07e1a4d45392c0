// UDP sockets for the WireGuard transport: open/bind with large buffers, and
// batched receive/send of datagrams with recvmmsg/sendmmsg.
//
// UDP GSO (UDP_SEGMENT on send) and GRO (UDP_GRO on receive) are a later
// issue; the places they go are marked "GSO:" and "GRO:" in udp.cc.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace tundra::udp {

// Address record, one per packet, kAddrStride bytes:
//   [0] family 4 or 6 (0 = none), [1] 0, [2..3] port big-endian,
//   [4..19] address (IPv4 in [4..7], the rest zero).
// IPv4-mapped IPv6 sources (dual-stack socket) are recorded as family 4.
constexpr size_t kAddrStride = 20;
constexpr size_t kAddrFamily = 0;
constexpr size_t kAddrPort = 2;
constexpr size_t kAddrBytes = 4;

// Messages per recvmmsg/sendmmsg call (wireguard-go's IdealBatchSize); larger
// batches are done in several calls. The headers live on the stack.
constexpr size_t kChunk = 128;

// Raw batch entry points, usable from other native code. The N-API glue
// validates every row first; each row is re-read once and re-checked at use
// anyway (descriptor arrays may be in a SharedArrayBuffer).
//
// RecvBatch: datagram i goes to data[offsets[i], offsets[i] + capacity), its
// length to lengths[i] and its source to record i of addrs. Returns the number
// of slots filled; stops when nothing more is ready (EAGAIN). A datagram longer
// than capacity is truncated by the kernel (MSG_TRUNC): it fills its slot with
// lengths[i] = 0, i.e. it is dropped. Errors the socket reports for earlier
// sends (ECONNREFUSED from an ICMP port unreachable, EHOSTUNREACH, ...) are
// consumed and ignored. *fatal is 0, or the errno of an unrecoverable error
// (EBADF, ENOTSOCK, ...); the datagrams received before it are returned.
size_t RecvBatch(int fd, uint8_t* data, size_t data_len, const uint32_t* offsets,
                 uint32_t* lengths, uint8_t* addrs, size_t count, uint32_t capacity,
                 int* fatal);

// SendBatch: sends data[offsets[i], offsets[i] + lengths[i]) to record i of
// addrs, in order; returns how many were consumed. Stops early only on EAGAIN
// or ENOBUFS (the rest are for a retry). A datagram the kernel refuses
// (EMSGSIZE, ENETUNREACH, EACCES, EAFNOSUPPORT for a v6 record on a v4
// socket, EDESTADDRREQ for a record of family 0, ...) is consumed with
// status[i] = -errno; a sent one gets 0 (status may be null). *fatal is set
// when the fd is unusable (EBADF, ENOTSOCK).
size_t SendBatch(int fd, const uint8_t* data, size_t data_len, const uint32_t* offsets,
                 const uint32_t* lengths, const uint8_t* addrs, size_t count, int32_t* status,
                 int* fatal);

// Adds udpOpen, udpSetFwmark, udpRecv, udpSend and UDP_ADDR_STRIDE.
void Init(Napi::Env env, Napi::Object exports);

}  // namespace tundra::udp
