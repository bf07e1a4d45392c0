// Typed wrapper over the addon's TUN calls (native/tun.cc).
//
// Batches: packet i lives in `data[offsets[i], offsets[i] + lengths[i])`. `data` may be
// any Uint8Array view (Buffer, subarray, SharedArrayBuffer-backed). One call moves
// the whole batch: no per-packet JS↔C++ crossing, no per-packet allocation. The batch
// functions are the native functions themselves; their argument checks run in C++
// once per call, before any system call:
// - a wrong type (fd not a number, data not a Uint8Array, …) throws a TypeError;
// - a value out of range (a non-integer or negative fd, count beyond offsets/lengths/
//   status, a slot reaching past `data`) throws a RangeError, and nothing was read or
//   written.
// System errors throw an Error naming the interface or fd and the errno, with
// `.code` ('EPERM'), `.errno` (negative, like node's) and `.syscall`.
import { nativeFunction, nativeNumber } from '../native/addon.js';
import { closeFd } from '../io/fd.js';

/** An open TUN device. */
export interface Tun {
  /** Non-blocking, close-on-exec; close it with closeFd from ./fd.js (after closing its FdWatcher). */
  fd: number;
  /** The kernel's name for it (the requested name, or what a `%d` pattern became). */
  name: string;
}

/** Options of {@link openTun}. */
export interface OpenTunOptions {
  /**
   * IFF_VNET_HDR: every read and write carries a 10-byte virtio_net_hdr first. Read with
   * {@link tunReadVnet}; write coalesced items (src/offload/native.ts) or packets behind an
   * all-zero header with {@link tunWrite}. Set the offloads with {@link tunSetOffload}.
   */
  vnetHeader?: boolean;
  /** IFF_MULTI_QUEUE: several fds (one per reader thread) may attach to the interface. */
  multiQueue?: boolean;
}

/** Longest interface name Linux takes (IFNAMSIZ - 1 bytes). */
export const MAX_INTERFACE_NAME = 15;

/**
 * Why `name` cannot be an interface name (Linux's dev_valid_name: 1-15 bytes, not "."
 * or "..", no "/", ":" or white space; the UAPI socket's file name comes from it too),
 * or undefined when it can.
 */
export function interfaceNameProblem(name: string): string | undefined {
  const bytes = Buffer.byteLength(name);
  if (bytes > MAX_INTERFACE_NAME) {
    return `"${name}" is too long for an interface name: Linux allows at most ${MAX_INTERFACE_NAME} characters (it has ${bytes})`;
  }
  if (name === '' || name === '.' || name === '..' || /[/:\s]/.test(name)) {
    return `"${name}" is not a valid interface name (1-${MAX_INTERFACE_NAME} characters, no "/", ":" or spaces)`;
  }
  return undefined;
}

/**
 * Opens /dev/net/tun and attaches it to interface `name` (created if missing) as a
 * layer-3 TUN without packet info (`IFF_TUN | IFF_NO_PI`): reads and writes are
 * bare IPv4/IPv6 packets (behind a virtio_net_hdr with `vnetHeader`). The interface
 * lives as long as the fd (not persistent).
 *
 * Throws, for example, `cannot create TUN "wg0": Operation not permitted (EPERM)`
 * (no CAP_NET_ADMIN), `…: Device or resource busy (EBUSY)` (another process has
 * it, or its flags differ from the queues already attached), or
 * `…: File name too long (ENAMETOOLONG)` for a name of 16 bytes or more; each with `.code`.
 */
export function openTun(name: string, options: OpenTunOptions = {}): Tun {
  let flags = 0;
  if (options.vnetHeader === true) flags |= TUN_IFF_VNET_HDR;
  if (options.multiQueue === true) flags |= TUN_IFF_MULTI_QUEUE;
  return tunOpen(name, flags);
}

/**
 * Opens `count` queues of one multi-queue TUN (`IFF_MULTI_QUEUE` always, with the
 * options' vnetHeader): the first creates the interface (or attaches to it; a `%d`
 * pattern is resolved there), each further one opens /dev/net/tun again and attaches
 * to the same name, as a queue of its own. Returned in queue order: tun.c numbers the
 * queues in the order they attach, and the kernel's choice of queue for a packet it
 * sends into the TUN follows that numbering.
 *
 * Flow steering (tun.c; checked by test/netns/tun-queues.test.ts on Linux 6.18): a
 * packet WRITTEN through queue k records its flow (a symmetric hash of addresses and
 * ports that the kernel computes from the packet itself; nothing to pass in) as queue
 * k's, and the kernel's packets of that flow, either direction, are then READ from
 * queue k. The latest write wins. An entry ages out 3 s after the flow's last write
 * (reads do not refresh it; a gc timer rounded to whole seconds removes it: 3.5 to
 * 3.8 s measured); flows without one are spread over the queues by that hash. The
 * entry is updated only after the written packet has gone up the stack, so a reply
 * the kernel makes during that write (an ICMP echo reply, tested; a SYN-ACK or a
 * quick ACK take the same path, untested) follows the flow's previous write, or the
 * hash for a new flow. So write each flow back through the queue that reads it.
 *
 * `count` must be an integer >= 1 (RangeError otherwise); the kernel refuses more
 * than 256 queues (E2BIG). Errors are openTun's (EBUSY when the interface exists
 * without IFF_MULTI_QUEUE or with other flags); on any failure the queues opened so
 * far are closed before it throws. Close each queue's fd with closeFd; the interface
 * goes with the last one.
 */
export function openTunQueues(name: string, count: number, options: Omit<OpenTunOptions, 'multiQueue'> = {}): Tun[] {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`openTunQueues: count ${count} is not an integer >= 1`);
  const queues: Tun[] = [];
  try {
    while (queues.length < count) {
      queues.push(openTun(queues[0]?.name ?? name, { vnetHeader: options.vnetHeader, multiQueue: true }));
    }
  } catch (err) {
    for (const q of queues) closeFd(q.fd);
    throw err;
  }
  return queues;
}

/** Sets the interface's MTU (SIOCSIFMTU), in the caller's network namespace. */
export const setLinkMtu: (name: string, mtu: number) => void = nativeFunction('setLinkMtu');

/**
 * The interface's MTU (SIOCGIFMTU), or 0 when there is no such interface: poll it to
 * follow MTU changes (wg-quick sets the MTU after start) and to notice that the
 * interface was deleted (`ip link del`, wg-quick down).
 */
export const linkMtu: (name: string) => number = nativeFunction('linkMtu');

/**
 * The name of the interface the TUN `fd` is attached to now (TUNGETIFF): it follows a
 * rename and a move to another network namespace. Throws an errno Error with code
 * 'EBADFD' once the interface was deleted, wherever it lived (`ip link del` in its
 * namespace, or that namespace deleted with it). Needs no capability.
 */
export const tunName: (fd: number) => string = nativeFunction('tunName');

/** What {@link tunLink} sees of the interface behind a TUN fd. */
export interface TunLink {
  /** Its name now (TUNGETIFF). */
  name: string;
  /** Its MTU, in the namespace it lives in. */
  mtu: number;
  /** Whether it is in the caller's network namespace (it may have been moved: `ip link set IF netns NS`). */
  callerNetns: boolean;
  /** Its tx_dropped counter (IFLA_STATS64), when the kernel gave it. */
  txDropped?: number;
}

/**
 * Looks at the interface the TUN `fd` is attached to, wherever it lives: its name
 * (TUNGETIFF), its network namespace (TUNGETDEVNETNS, Linux 5.2+, compared with the
 * caller's), and an RTM_GETLINK for it there — by that namespace's nsid here
 * (IFLA_TARGET_NETNSID; the kernel gives it one when the interface moves there, and
 * one is assigned here if not). Needs CAP_NET_ADMIN, no setns; keeps nothing open,
 * which would keep a deleted namespace alive.
 *
 * Throws an errno Error, `.syscall` naming the call ('ioctl', 'RTM_GETLINK', …):
 * EBADFD ('ioctl') once the interface was deleted, as {@link tunName}; ENOTTY or
 * EINVAL ('ioctl') before Linux 5.2; EPERM ('ioctl') or EACCES ('RTM_GETLINK') without
 * CAP_NET_ADMIN; ENODEV ('RTM_GETLINK') when it moved, was renamed or deleted during
 * the look.
 */
export const tunLink: (fd: number) => TunLink = nativeFunction('tunLink');

/**
 * Reads up to `count` packets: packet i into `data[offsets[i], offsets[i] + capacity)`,
 * its length into `lengths[i]`. Returns the number read; 0 when none is ready
 * (EAGAIN) — wait for the fd to be readable. EINTR is retried.
 *
 * A packet longer than `capacity` cannot be delivered whole: its slot is counted with
 * `lengths[i] = 0` (skip zero-length slots). Any other errno means the device is gone
 * (EBADFD once the interface was deleted): it throws, unless packets were read before
 * it, which are returned first (the next call throws).
 */
export type TunRead = (
  fd: number,
  data: Uint8Array,
  offsets: Uint32Array,
  lengths: Uint32Array,
  count: number,
  capacity: number,
) => number;

/**
 * Writes packets 0..count-1 in order, one write each. Returns how many were consumed;
 * fewer than `count` only on EAGAIN (the rest are for a retry when the fd is writable).
 * A packet the kernel rejects — EINVAL (not IPv4/IPv6: bad version nibble or empty),
 * EIO (link down), … — is consumed, and `status[i]` gets -errno; written packets get 0.
 * Entries of `status` past the return value are left as they were. Throws if the fd
 * itself is unusable (EBADF, or EBADFD once the interface was deleted).
 */
export type TunWrite = (
  fd: number,
  data: Uint8Array,
  offsets: Uint32Array,
  lengths: Uint32Array,
  count: number,
  status?: Int32Array,
) => number;

/**
 * Reads from an IFF_VNET_HDR TUN and splits what it reads into slots
 * `data[offsets[j], offsets[j] + capacity)`, j < count, lengths into `lengths[j]`: GSO
 * super-packets become their segments, a NONE packet with NEEDS_CSUM gets its checksum
 * completed (src/offload/native.ts, nativeSplit). Returns the number of slots filled; 0
 * when nothing is ready (EAGAIN) — wait for the fd to be readable. EINTR is retried.
 *
 * `scratch` (at least TUN_READ_SCRATCH_SIZE bytes) takes each read; `state[0]` is the
 * length of a packet left pending in scratch (zero it once, then keep both for the
 * fd's next calls): a super-packet that needs more slots than remain after some were
 * filled stays there and is split first by the next call. A packet that cannot be used
 * (longer than 10 + 65535 bytes, or any split drop code, or needing more segments than
 * `count` slots) is dropped and counted. `stats` (at least 12 entries, names in
 * OFFLOAD_STAT_NAMES) is incremented. At most count + 256 packets are read per call, so
 * a flood of dropped packets returns (possibly 0 with the fd still readable) rather
 * than keeping the caller. Other errnos as {@link TunRead}: thrown if no slot was
 * filled, else the filled slots are returned and the next call meets the error.
 */
export type TunReadVnet = (
  fd: number,
  scratch: Uint8Array,
  state: Uint32Array,
  data: Uint8Array,
  offsets: Uint32Array,
  lengths: Uint32Array,
  count: number,
  capacity: number,
  stats?: Float64Array,
) => number;

/** See {@link TunRead}. */
export const tunRead: TunRead = nativeFunction('tunRead');
/** See {@link TunWrite}. */
export const tunWrite: TunWrite = nativeFunction('tunWrite');

/** See {@link TunReadVnet}. */
export const tunReadVnet: TunReadVnet = nativeFunction('tunReadVnet');

/**
 * Sets the vnet header size of an IFF_VNET_HDR TUN (TUNSETVNETHDRSZ; the default is
 * VNET_HDR_LEN = 10, which everything here uses). Throws an errno Error on failure
 * (EINVAL for a size below 10).
 */
export const tunSetVnetHeaderSize: (fd: number, size: number) => void = nativeFunction('tunSetVnetHeaderSize');

/**
 * Tells the kernel which offloads the reader handles (TUNSETOFFLOAD, `bits` from
 * TUN_F_*): with TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 it may hand over TCP
 * super-packets, with TUN_F_USO4 | TUN_F_USO6 (Linux 6.2+) UDP ones. Returns 0, or the
 * (positive) errno of the refusal — EINVAL for bits the kernel does not know, for
 * example — without throwing: the caller decides what to try next.
 */
export const tunSetOffload: (fd: number, bits: number) => number = nativeFunction('tunSetOffload');

/** TUNSETOFFLOAD bit: the reader takes packets with a partial checksum (NEEDS_CSUM). */
export const TUN_F_CSUM: number = nativeNumber('TUN_F_CSUM');
/** TUNSETOFFLOAD bit: IPv4 TCP super-packets. */
export const TUN_F_TSO4: number = nativeNumber('TUN_F_TSO4');
/** TUNSETOFFLOAD bit: IPv6 TCP super-packets. */
export const TUN_F_TSO6: number = nativeNumber('TUN_F_TSO6');
/** TUNSETOFFLOAD bit: TSO with the ECN bit (split drops such packets). */
export const TUN_F_TSO_ECN: number = nativeNumber('TUN_F_TSO_ECN');
/** TUNSETOFFLOAD bit: UFO (split drops such packets). */
export const TUN_F_UFO: number = nativeNumber('TUN_F_UFO');
/** TUNSETOFFLOAD bit: IPv4 UDP super-packets (USO, Linux 6.2+). */
export const TUN_F_USO4: number = nativeNumber('TUN_F_USO4');
/** TUNSETOFFLOAD bit: IPv6 UDP super-packets (USO, Linux 6.2+). */
export const TUN_F_USO6: number = nativeNumber('TUN_F_USO6');
/** Minimum `scratch` length of {@link tunReadVnet}: 10 + 65535 + 1 spare byte. */
export const TUN_READ_SCRATCH_SIZE: number = nativeNumber('TUN_READ_SCRATCH_SIZE');

const TUN_IFF_VNET_HDR: number = nativeNumber('TUN_IFF_VNET_HDR');
const TUN_IFF_MULTI_QUEUE: number = nativeNumber('TUN_IFF_MULTI_QUEUE');
const tunOpen: (name: string, flags: number) => Tun = nativeFunction('tunOpen');
