// UDP sockets for the WireGuard transport: open/bind with large buffers, and
// batched receive/send of datagrams with recvmmsg/sendmmsg, with UDP GSO
// (UDP_SEGMENT) on send and UDP GRO (UDP_GRO) on receive.
//
// Policy-free: these functions report errno values and counters; whether to
// stop using an offload or to resend is decided by the caller.
#pragma once

#include <napi.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <cstddef>
#include <cstdint>

#include "histogram.h"

namespace tundra::udp {

// Address record, one per packet, kAddrStride bytes. The remote side:
//   [0] family 4 or 6 (0 = none), [1] the outer IP header's ECN field (0–3: receive
//   fills it from IP_TOS / IPV6_TCLASS; send sets it with the same cmsg unless 0),
//   [2..3] port big-endian,
//   [4..19] address (IPv4 in [4..7], the rest zero).
// IPv4-mapped IPv6 sources (dual-stack socket) are recorded as family 4.
// The local side (sticky source address, as wireguard-go's and the kernel's):
//   [20] family 4 or 6 (0 = none: the routing table picks the source), [21..23] 0,
//   [24..27] interface index, little-endian, [28..43] address (IPv4 in [28..31]).
// Receive fills it from IP_PKTINFO (ipi_spec_dst) or IPV6_PKTINFO (a v4-mapped
// one, on a dual socket, as family 4). Send passes it back as IP_PKTINFO /
// IPV6_PKTINFO when its family is the remote's; the interface index only for
// an IPv6 link-local address, whose scope needs it (pinning the interface
// would, for IPv4, make the kernel assume the peer on-link there after a route
// change: the routing table still picks the interface, as the kernel's does).
constexpr size_t kAddrStride = 44;
constexpr size_t kAddrFamily = 0;
constexpr size_t kAddrEcn = 1;
constexpr size_t kAddrPort = 2;
constexpr size_t kAddrBytes = 4;
constexpr size_t kAddrLocalFamily = 20;
constexpr size_t kAddrLocalIfindex = 24;
constexpr size_t kAddrLocalBytes = 28;

// Messages per recvmmsg/sendmmsg call (wireguard-go's IdealBatchSize); larger
// batches are done in several calls. The headers live on the stack.
constexpr size_t kChunk = 128;

// ---- GSO (send) ----
// The gso bitmask of SendBatch: which destination families may be coalesced.
constexpr uint32_t kGsoV4 = 1;  // record family 4 (v4-mapped on a dual socket too)
constexpr uint32_t kGsoV6 = 2;  // record family 6
// Datagrams per UDP_SEGMENT message: UDP_MAX_SEGMENTS is 64 on older kernels
// (128 on newer ones); 64 works on both.
constexpr size_t kGsoMaxSegments = 64;
// UDP payload bytes per message: 65535 minus the IPv4 + UDP or the UDP header
// (the IPv6 payload length covers the UDP header only).
constexpr size_t kGsoMaxBytesV4 = 65535 - 20 - 8;
constexpr size_t kGsoMaxBytesV6 = 65535 - 8;

// Send stats (Float64Array, incremented): messages sent with a UDP_SEGMENT
// cmsg, the datagrams in them, then a histogram of datagrams per message sent.
enum SendStat : size_t {
  kGsoSends = 0,
  kGsoDatagrams,
  kSendSegmentsHistogram,
  kSendStatCount = kSendSegmentsHistogram + kHistogramEntries
};

// ---- GRO (receive) ----
// Scratch for GRO receive: k messages of up to kGroMessageMax bytes, message
// j at j * kGroMessageStride, 1 <= k <= kGroMaxMessages.
constexpr size_t kGroMessageStride = 65536;
constexpr size_t kGroMessageMax = 65535;
constexpr size_t kGroMaxMessages = 64;

// The stash, in a Uint32Array the caller zeroes once and then leaves alone:
//   [0] messages in scratch (0: stash empty), [1] index of the message being
//   cut, [2] bytes of it already cut into slots, [3] reserved (0);
//   then per message j, kGroStateMsgWords words at kGroStateHeader + j * kGroStateMsgWords:
//   length, gso_size (0: none), flags (kGroTrunc | kGroCtrunc), source record
//   (kAddrStride bytes).
constexpr size_t kGroStateHeader = 4;
constexpr size_t kGroStateMsgWords = 3 + kAddrStride / 4;
constexpr size_t kGroStateWords = kGroStateHeader + kGroMaxMessages * kGroStateMsgWords;
constexpr uint32_t kGroTrunc = 1;
constexpr uint32_t kGroCtrunc = 2;

// Receive stats (Float64Array): messages carrying > 1 datagram and the
// datagrams in them (GRO only), messages dropped for MSG_CTRUNC (incremented),
// the last SO_RXQ_OVFL value seen (assigned: the kernel's running count of
// drops on this socket; the caller sets -1 initially and takes deltas), how
// long the newest and the oldest datagram this call took from the kernel had
// waited in the socket's queue, in ns (assigned per call, from SO_TIMESTAMPNS;
// -1 when it took none with a timestamp), then a histogram of datagrams per
// message received.
enum RecvStat : size_t {
  kGroReceives = 0,
  kGroDatagrams,
  kCtruncDrops,
  kRxqOverflowRaw,
  kSojournNewestNs,
  kSojournOldestNs,
  kRecvSegmentsHistogram,
  kRecvStatCount = kRecvSegmentsHistogram + kHistogramEntries
};

// ---- receive control messages ----
// Receive control room per message: SO_RXQ_OVFL (u32), UDP_GRO (int),
// IP_PKTINFO and IPV6_PKTINFO (a dual socket asks only for the second, but
// room for both costs nothing), IP_TOS (a byte), IPV6_TCLASS (an int) and
// SO_TIMESTAMPNS (a timespec). Too little would cost datagrams (MSG_CTRUNC).
constexpr size_t kRecvControl = CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(int)) +
                                CMSG_SPACE(sizeof(in_pktinfo)) + CMSG_SPACE(sizeof(in6_pktinfo)) +
                                CMSG_SPACE(sizeof(uint8_t)) + CMSG_SPACE(sizeof(int)) +
                                CMSG_SPACE(sizeof(timespec));

// The local side of a received datagram, from its IP_PKTINFO / IPV6_PKTINFO.
struct Local {
  uint8_t family = 0;  // 0: no pktinfo came
  uint32_t ifindex = 0;
  uint8_t address[16] = {};
};

struct RecvCmsgs {
  int gso_size = 0;  // UDP_GRO: the size of each coalesced datagram (an int)
  bool has_overflow = false;
  uint32_t overflow = 0;  // SO_RXQ_OVFL: the socket's drop count (a u32)
  uint8_t ecn = 0;        // IP_TOS / IPV6_TCLASS: the outer header's ECN field
  int64_t received_ns = 0;  // SO_TIMESTAMPNS: when the kernel received it (CLOCK_REALTIME); 0: none came
  Local local;
};

// The control messages of one received message (h->msg_control, of at most
// kRecvControl bytes, as the kernel left it), and its MSG_CTRUNC, into stats
// (kRxqOverflowRaw assigned, kCtruncDrops incremented; may be null). No
// system call: fuzz/native/udp_cmsg.cc runs it on arbitrary bytes.
RecvCmsgs ParseCmsgs(msghdr* h, double* stats);

struct GroBuffers {
  uint8_t* scratch = nullptr;  // messages * kGroMessageStride bytes
  size_t messages = 0;         // k
  uint32_t* state = nullptr;   // kGroStateWords words
};

// Raw batch entry points, usable from other native code. The N-API glue
// validates every row first; each row is re-read once and re-checked at use
// anyway (descriptor arrays may be in a SharedArrayBuffer). `stats` may be null.
//
// RecvBatch: datagram i goes to data[offsets[i], offsets[i] + capacity), its
// length to lengths[i] and its source to record i of addrs. Returns the number
// of slots filled; stops when nothing more is ready (EAGAIN). A datagram longer
// than capacity is truncated by the kernel (MSG_TRUNC): it fills its slot with
// lengths[i] = 0, i.e. it is dropped; so does one whose control data was
// truncated (MSG_CTRUNC, counted) and a coalesced one (UDP_GRO cmsg: the socket
// has GRO on, read it with GroRecvBatch). Errors the socket reports for earlier
// sends (ECONNREFUSED from an ICMP port unreachable, EHOSTUNREACH, ...) are
// consumed and ignored. *fatal is 0, or the errno of an unrecoverable error
// (EBADF, ENOTSOCK, ...); the datagrams received before it are returned.
size_t RecvBatch(int fd, uint8_t* data, size_t data_len, const uint32_t* offsets,
                 uint32_t* lengths, uint8_t* addrs, size_t count, uint32_t capacity,
                 double* stats, int* fatal);

// GroRecvBatch: as RecvBatch, but messages are received into gro.scratch and
// cut into slots by their UDP_GRO segment size (copies). Datagrams that do not
// fit in this call's slots stay stashed in scratch (described by gro.state)
// and are cut first by the next call; only an empty stash leads to another
// recvmmsg, of min(k, free slots) messages. A call that leaves a stash behind
// has filled all `count` slots. The state must be consistent (see
// GroStateValid): the glue checks it before calling.
size_t GroRecvBatch(int fd, uint8_t* data, size_t data_len, const uint32_t* offsets,
                    uint32_t* lengths, uint8_t* addrs, size_t count, uint32_t capacity,
                    const GroBuffers& gro, double* stats, int* fatal);

// Whether a state's header is one GroRecvBatch could have left for k messages.
bool GroStateValid(const uint32_t* state, size_t messages);

// SendBatch: sends data[offsets[i], offsets[i] + lengths[i]) to record i of
// addrs, in order (from the record's local address, if it has one); returns
// how many were consumed. Stops early only on EAGAIN
// or ENOBUFS (the rest are for a retry). A datagram the kernel refuses
// (EMSGSIZE, ENETUNREACH, EACCES, EAFNOSUPPORT for a v6 record on a v4
// socket, EDESTADDRREQ for a record of family 0, EINVAL (IPv4, IPv6) or
// ENODEV (IPv6 link-local) for a local address this host no longer has, ...)
// is consumed with status[i] = -errno; a sent one gets 0 (status may be null). *fatal is set
// when the fd is unusable (EBADF, ENOTSOCK).
//
// With gso (kGsoV4 | kGsoV6) a run of consecutive datagrams with equal records
// (remote and local parts),
// of equal length L (the last may be shorter), at most kGsoMaxSegments and
// kGsoMaxBytesV4/V6 bytes, is one message with a UDP_SEGMENT cmsg of L; all
// its datagrams share that message's status (EIO: the route's device has no TX
// checksum offload; EINVAL/EMSGSIZE: L plus headers exceeds the path MTU).
size_t SendBatch(int fd, const uint8_t* data, size_t data_len, const uint32_t* offsets,
                 const uint32_t* lengths, const uint8_t* addrs, size_t count, int32_t* status,
                 uint32_t gso, double* stats, int* fatal);

// Adds udpOpen, udpSetFwmark, udpRecv, udpSend, UDP_ADDR_STRIDE, the GSO/GRO
// constants and the stat name lists.
void Init(Napi::Env env, Napi::Object exports);

}  // namespace tundra::udp
