// Typed wrapper over the addon's UDP calls (native/udp.cc): sockets for the
// WireGuard transport and batched receive/send with recvmmsg/sendmmsg, with UDP GSO
// (UDP_SEGMENT) on send and GRO (UDP_GRO) on receive.
//
// Batches: datagram i lives in `data[offsets[i], …)` and its peer address in record i
// of `addrs` (ADDR_STRIDE bytes each, src/pipeline/address.ts). `data`/`addrs` may be any
// Uint8Array view (SharedArrayBuffer-backed, any byteOffset). One call moves the whole
// batch; the batch functions are the native functions themselves and check their
// arguments in C++ once per call, before any system call: a wrong type throws a
// TypeError, a value out of range (non-integer or negative fd, count beyond
// offsets/lengths/addrs/status, a slot reaching past `data`) a RangeError. System
// errors throw an Error with `.code`, `.errno` (negative) and `.syscall`.
//
// Offloads keep the same batch layout: udpSend({gso}) coalesces runs of equal-size
// datagrams to one peer into one kernel message, udpRecv({gro}) cuts the kernel's
// coalesced messages back into one slot per datagram. The native side only reports
// (statuses, counters); whether to stop using GSO after an error is the caller's call.
import { expectNativeConstants, nativeFunction } from '../native/addon.js';
import { closeFd } from '../io/fd.js';
import { ADDR_STRIDE } from '../pipeline/address.js';
import { UDP_RECV_STAT_NAMES, UDP_SEND_STAT_NAMES } from '../offload/udp-stats.js';

export type UdpFamily = 'dual' | 4 | 6;

export interface UdpOpenOptions {
  /** Port to bind; 0 picks an ephemeral one (see the result's `port`). */
  port: number;
  /**
   * 'dual': one AF_INET6 socket with IPV6_V6ONLY=0 serving IPv4 and IPv6 peers (an
   * AF_INET socket if the kernel has no IPv6 — the result's `family` says 4 then).
   * 4: AF_INET. 6: AF_INET6 with IPV6_V6ONLY=1.
   */
  family: UdpFamily;
  /** Local address to bind (default: any). An IPv4 address on 'dual' binds its v4-mapped form. */
  bindAddress?: string;
  /** SO_RCVBUF in bytes (default 7 MiB; SO_RCVBUFFORCE is tried first, as wireguard-go does; 0 keeps the kernel's). */
  receiveBuffer?: number;
  /** SO_SNDBUF in bytes, likewise. */
  sendBuffer?: number;
  /** SO_MARK (needs CAP_NET_ADMIN); 0 or absent sets none. */
  fwmark?: number;
  /**
   * Turn UDP_GRO on (default false): the kernel may then hand over several datagrams
   * of one flow as one message, so the socket must be read with udpRecv's `gro`
   * option. See the result's `offloads.gro` for whether it is really on.
   */
  gro?: boolean;
  /**
   * SO_REUSEPORT before bind (default false): the socket joins the group of sockets on
   * its address and port that have it too (same user only), and the kernel spreads
   * incoming datagrams over the group by a hash of their 4-tuple. Use
   * {@link openUdpGroup} to make a group: it checks first that nothing else holds the
   * port. A socket of a group that is closed can be replaced by opening one with
   * reusePort on the same port (a worker restart); the others keep their datagrams.
   */
  reusePort?: boolean;
}

/** What the socket can do, probed at open (as wireguard-go does). */
export interface UdpOffloads {
  /** getsockopt(UDP_SEGMENT) works: udpSend may be given `gso` (Linux >= 4.18). */
  gso: boolean;
  /**
   * UDP_GRO is on: asked for, and read back as 1 (Linux >= 5.12; older kernels cannot
   * read it back, and there it is turned off again).
   */
  gro: boolean;
}

export interface UdpSocket {
  /** Non-blocking, close-on-exec; close with closeFd from ./fd.js (after its FdWatcher). */
  fd: number;
  /** The bound port (getsockname), the requested one or the ephemeral one. */
  port: number;
  family: UdpFamily;
  offloads: UdpOffloads;
}

const FAMILY_CODE = { dual: 0, 4: 4, 6: 6 } as const;

/**
 * Opens a non-blocking UDP socket and binds it. Buffer sizes are best effort (the
 * kernel clamps them without CAP_NET_ADMIN). SO_RXQ_OVFL is always on (its drop count
 * shows in udpRecv's stats). Throws an Error with `.code` such as
 * EADDRINUSE (`cannot open UDP socket on port 51820 (bind): Address already in use
 * (EADDRINUSE)`), EPERM for a fwmark without CAP_NET_ADMIN, EADDRNOTAVAIL for a
 * bindAddress not on this host; a TypeError/RangeError for malformed options.
 */
export function udpOpen(options: UdpOpenOptions): UdpSocket {
  if (typeof options !== 'object' || options === null) throw new TypeError('udpOpen: options must be an object');
  const code = FAMILY_CODE[options.family as keyof typeof FAMILY_CODE];
  if (code === undefined) throw new RangeError(`udpOpen: family must be 'dual', 4 or 6, not ${String(options.family)}`);
  const r = nativeOpen(
    options.port, code, options.bindAddress, options.receiveBuffer, options.sendBuffer, options.fwmark, options.gro, options.reusePort,
  );
  return { fd: r.fd, port: r.port, family: r.family === 0 ? 'dual' : r.family, offloads: r.offloads };
}

/**
 * Opens `count` sockets on one port as an SO_REUSEPORT group (one per reader thread;
 * the kernel spreads datagrams over them by a hash of the 4-tuple, so one peer's
 * datagrams all reach one socket while its endpoint stays put).
 *
 * SO_REUSEPORT alone would let anything of the same user bind the port too and
 * silently take a share of the datagrams: a second tundra on the same port would
 * join, not fail. So a probe socket is bound first WITHOUT SO_REUSEPORT, with the
 * options as given: it fails with udpOpen's EADDRINUSE error when anything holds the
 * port (a group included), and with port 0 it picks the ephemeral port the group
 * then uses. The probe is closed and the group opened on its port with reusePort.
 * Between the two there is a short window (a few system calls) in which another
 * socket could take the port: a plain one makes the group's bind fail with
 * EADDRINUSE (thrown as well), but one with SO_REUSEPORT of the same user would join
 * unnoticed. Only such a racing program can do that; anything bound before is refused.
 *
 * `count` 1 opens no group at all: the probe is the socket, exactly what udpOpen
 * gives without reusePort. `options.reusePort` is ignored (the group decides it).
 * On any failure every socket opened here is closed before it throws. A RangeError
 * for a count that is not an integer >= 1.
 */
export function openUdpGroup(options: UdpOpenOptions & { count: number }): UdpSocket[] {
  const { count, ...rest } = options;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`openUdpGroup: count ${count} is not an integer >= 1`);
  const probe = udpOpen({ ...rest, reusePort: false });
  if (count === 1) return [probe];
  closeFd(probe.fd);
  const group: UdpSocket[] = [];
  try {
    // The probe's port (the ephemeral one for port 0) and family (dual may have
    // become 4 on a kernel without IPv6).
    while (group.length < count) group.push(udpOpen({ ...rest, port: probe.port, family: probe.family, reusePort: true }));
  } catch (err) {
    for (const s of group) closeFd(s.fd);
    throw err;
  }
  return group;
}

/** Sets SO_MARK on the socket (CAP_NET_ADMIN); 0 clears it. */
export const udpSetFwmark: (fd: number, mark: number) => void = nativeFunction('udpSetFwmark');

// ---- offload constants and state ----

/** udpSend's `gso` bits: may coalesce datagrams to IPv4 (also v4-mapped) / IPv6 peers. */
export const UDP_GSO_IPV4 = 1;
export const UDP_GSO_IPV6 = 2;
/** Datagrams per GSO message at most (UDP_MAX_SEGMENTS of older kernels). */
export const UDP_GSO_MAX_SEGMENTS = 64;
/** GRO scratch: message j is received at `scratch[j * 65536, …)`, up to 65535 bytes. */
export const UDP_GRO_MESSAGE_STRIDE = 65536;
/** GRO scratch holds k messages, 1 <= k <= 64. */
export const UDP_GRO_MAX_MESSAGES = 64;
/** Length of the GRO state array (Uint32Array; opaque: only udpRecv and udpGroStashed read it). */
export const UDP_GRO_STATE_WORDS = 4 + 64 * (3 + ADDR_STRIDE / 4);

/**
 * GRO receive buffers, one per socket (and per reading thread): `scratch` takes
 * `messages` kernel messages of up to 64 KiB per recvmmsg, `state` remembers the
 * datagrams cut from them not yet handed out (the stash). Keep passing the same pair.
 */
export interface UdpGroBuffers {
  scratch: Uint8Array;
  state: Uint32Array;
}

/** Allocates {@link UdpGroBuffers} for `messages` (1..64) messages per recvmmsg. */
export function udpGroBuffers(messages: number): UdpGroBuffers {
  if (!Number.isInteger(messages) || messages < 1 || messages > UDP_GRO_MAX_MESSAGES) {
    throw new RangeError(`udpGroBuffers: messages ${messages} is not an integer in [1, ${UDP_GRO_MAX_MESSAGES}]`);
  }
  return { scratch: new Uint8Array(messages * UDP_GRO_MESSAGE_STRIDE), state: new Uint32Array(UDP_GRO_STATE_WORDS) };
}

/**
 * Whether datagrams are stashed in `gro` waiting for the next udpRecv. The fd will
 * not turn readable for them: a reader that stops after a call that filled every
 * slot must call again later (say, setImmediate) if this is true.
 */
export function udpGroStashed(gro: UdpGroBuffers): boolean {
  return gro.state[0] !== 0;
}

export interface UdpRecvOptions {
  /**
   * Read a socket opened with `gro: true`: messages land in `gro.scratch` and are
   * cut into slots; what does not fit stays there for the next call.
   */
  gro?: UdpGroBuffers;
  /** Counters, UDP_RECV_STAT_NAMES order; make it with {@link udpRecvStats}. */
  stats?: Float64Array;
}

/**
 * Receives up to `count` datagrams with recvmmsg(MSG_DONTWAIT): datagram i into
 * `data[offsets[i], offsets[i] + capacity)`, its length into `lengths[i]`, its source
 * into record i of `addrs`, the local address it was sent to into the record's local
 * side and its outer ECN field into the ECN byte. Returns the number of slots filled; 0 when nothing is
 * waiting (EAGAIN) — wait for the fd to be readable.
 *
 * - A datagram longer than `capacity` is truncated by the kernel (MSG_TRUNC) and so
 *   dropped: its slot is counted, with `lengths[i] = 0` (its source is still filled
 *   in). Callers skip zero-length slots; a real empty datagram looks the same, and
 *   WireGuard has no use for one either.
 * - Pending socket errors from earlier sends (ECONNREFUSED after an ICMP port
 *   unreachable, EHOSTUNREACH, …) are consumed and ignored, a bounded number per call:
 *   they never throw. (Linux reports them only on connected or IP_RECVERR sockets,
 *   which udpOpen does not make, but a daemon must not die of one.)
 * - Only unrecoverable errors throw (EBADF, ENOTSOCK, …), after the datagrams received
 *   before them have been returned.
 * - A datagram whose control data was cut short (MSG_CTRUNC: never expected, the
 *   room is sized for every cmsg the socket asks for) gets length 0 and is counted in
 *   `stats[2]`. Every datagram queued after a receive-queue drop carries the socket's
 *   drop count (SO_RXQ_OVFL), kept in `stats[3]`.
 *
 * With `options.gro` (socket opened with `gro: true`): recvmmsg takes min(k, free
 * slots) messages of up to 65535 bytes into `gro.scratch` (k = scratch.length /
 * 65536). A message with a UDP_GRO cmsg holds ceil(len / gso_size) datagrams of
 * gso_size bytes (the last may be shorter); each is copied into its own slot, in
 * order, all with the message's source. Datagrams that do not fit in this call's
 * slots are stashed (in scratch, described by `gro.state`) and come first in the next
 * call, before any new recvmmsg; a call that leaves a stash returns `count`. A
 * datagram longer than `capacity` gets a length-0 slot; a message truncated by the
 * kernel (MSG_TRUNC) or with truncated control data (MSG_CTRUNC, counted) one
 * length-0 slot. A malformed `gro` (scratch not k * 65536 bytes with 1 <= k <= 64,
 * state shorter than UDP_GRO_STATE_WORDS or not a state udpRecv left) is a RangeError.
 *
 * Without `gro`, a socket opened with `gro: true` would deliver coalesced messages no
 * single slot can hold: they get length 0 (dropped, not counted).
 */
export type UdpRecv = (
  fd: number,
  data: Uint8Array,
  offsets: Uint32Array,
  lengths: Uint32Array,
  addrs: Uint8Array,
  count: number,
  capacity: number,
  options?: UdpRecvOptions,
) => number;

/**
 * Sends datagram i = `data[offsets[i], offsets[i] + lengths[i])` to record i of
 * `addrs`, for i in 0..count-1, in order, with sendmmsg (looped until all are done).
 * IPv4 records go v4-mapped on a dual-stack socket. A record with a local side of the
 * remote's family is sent from that address (an IP_PKTINFO / IPV6_PKTINFO cmsg; the
 * interface index only for an IPv6 link-local one, otherwise the routing table picks the
 * interface); one whose local address this host no longer has fails with -EINVAL
 * (-ENODEV for a link-local one whose interface is gone): resending it without the local
 * side (sent from the routing table's choice) is the caller's decision. A record whose
 * ECN byte (ADDR_ECN) is not 0 is sent with that ECN field (an IP_TOS / IPV6_TCLASS cmsg;
 * the DSCP bits 0). Returns how many were consumed:
 * fewer than `count` only when the kernel says EAGAIN or ENOBUFS (socket buffer or
 * device queue full; the rest are for a retry when the fd is writable).
 *
 * A datagram the kernel refuses is consumed with `status[i] = -errno` and the next one
 * is tried: EMSGSIZE (too large), ENETUNREACH/EHOSTUNREACH (no route, or IPv4 on an
 * IPv6-only socket), EACCES/EPERM (firewall, broadcast), EAFNOSUPPORT (IPv6 record on
 * an IPv4 socket), EINVAL (port 0, local address gone), EDESTADDRREQ (record family not 4 or 6). Sent
 * datagrams get `status[i] = 0`; entries past the return value are untouched. Throws
 * only when the fd itself is unusable (EBADF, ENOTSOCK).
 *
 * `gso` (default 0: every datagram is its own message): UDP_GSO_IPV4 | UDP_GSO_IPV6,
 * the destination families whose datagrams may be coalesced (check the socket's
 * `offloads.gso` first). A run of consecutive datagrams with identical address
 * records (remote and local sides, ECN byte) and equal length L — the last may be shorter, which ends the run — of at
 * most 64 datagrams and 65507 (IPv4) / 65527 (IPv6) bytes goes as one message with
 * UDP_SEGMENT = L, scattered straight from the slots; a run of one goes plainly.
 * Every datagram of a message gets that message's status, so a refused GSO message
 * fails all its datagrams: -EIO when the route's device has no TX checksum offload,
 * -EINVAL or -EMSGSIZE when L plus headers exceeds the path MTU (the rest of the batch
 * still goes). Resending them without `gso` is the caller's decision.
 *
 * `stats` (Float64Array, UDP_SEND_STAT_NAMES order; see {@link udpSendStats}) is
 * incremented by the GSO messages sent and their datagrams.
 */
export type UdpSend = (
  fd: number,
  data: Uint8Array,
  offsets: Uint32Array,
  lengths: Uint32Array,
  addrs: Uint8Array,
  count: number,
  status?: Int32Array,
  gso?: number,
  stats?: Float64Array,
) => number;

/** See {@link UdpRecv}. */
export const udpRecv: UdpRecv = nativeFunction('udpRecv');
/** See {@link UdpSend}. */
export const udpSend: UdpSend = nativeFunction('udpSend');

// ---- native functions ----

type NativeOpen = (
  port: number,
  family: 0 | 4 | 6,
  bindAddress: string | undefined,
  receiveBuffer: number | undefined,
  sendBuffer: number | undefined,
  fwmark: number | undefined,
  gro: boolean | undefined,
  reusePort: boolean | undefined,
) => { fd: number; port: number; family: 0 | 4 | 6; offloads: UdpOffloads };

const nativeOpen: NativeOpen = nativeFunction('udpOpen');

// A mismatch would silently misplace every address or counter: fail at load instead.
expectNativeConstants([
  ['UDP_ADDR_STRIDE', ADDR_STRIDE],
  ['UDP_GSO_MAX_SEGMENTS', UDP_GSO_MAX_SEGMENTS],
  ['UDP_GRO_MESSAGE_STRIDE', UDP_GRO_MESSAGE_STRIDE],
  ['UDP_GRO_MAX_MESSAGES', UDP_GRO_MAX_MESSAGES],
  ['UDP_GRO_STATE_WORDS', UDP_GRO_STATE_WORDS],
  ['UDP_SEND_STAT_NAMES', UDP_SEND_STAT_NAMES],
  ['UDP_RECV_STAT_NAMES', UDP_RECV_STAT_NAMES],
]);
