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
import { native } from '../native/addon.js';

/** An open TUN device. */
export interface Tun {
  /** Non-blocking, close-on-exec; close it with {@link closeFd} (after closing its FdWatcher). */
  fd: number;
  /** The kernel's name for it (the requested name, or what a `%d` pattern became). */
  name: string;
}

/**
 * Opens /dev/net/tun and attaches it to interface `name` (created if missing) as a
 * layer-3 TUN without packet info (`IFF_TUN | IFF_NO_PI`): reads and writes are
 * bare IPv4/IPv6 packets. The interface lives as long as the fd (not persistent).
 *
 * Throws, for example, `cannot create TUN "wg0": Operation not permitted (EPERM)`
 * (no CAP_NET_ADMIN), `…: Device or resource busy (EBUSY)` (another process has
 * it), or `…: File name too long (ENAMETOOLONG)` for a name of 16 bytes or more;
 * each with `.code`.
 */
export function openTun(name: string): Tun {
  // IFF_VNET_HDR (offloads) will be passed here as the second argument once the
  // read/write paths handle the virtio_net_hdr; the native side already takes it.
  return tunOpen(name, 0);
}

/** Sets the interface's MTU (SIOCSIFMTU), in the caller's network namespace. */
export const setLinkMtu: (name: string, mtu: number) => void = nativeFunction('setLinkMtu');

/** Sets or clears IFF_UP on the interface (SIOCGIFFLAGS + SIOCSIFFLAGS). */
export const setLinkUp: (name: string, up: boolean) => void = nativeFunction('setLinkUp');

/**
 * The interface's MTU (SIOCGIFMTU), or 0 when there is no such interface: poll it to
 * follow MTU changes (wg-quick sets the MTU after start) and to notice that the
 * interface was deleted (`ip link del`, wg-quick down).
 */
export const linkMtu: (name: string) => number = nativeFunction('linkMtu');

/**
 * Closes an fd from {@link openTun} or udpOpen. Close its FdWatcher first; any
 * watcher of the fd on this thread is stopped here anyway (libuv would abort the
 * process on meeting a closed fd it watches), and watch() on it throws EBADF.
 * Throws EBADF for an fd that is not open.
 */
export const closeFd: (fd: number) => void = nativeFunction('closeFd');

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

/** See {@link TunRead}. */
export const tunRead: TunRead = nativeFunction('tunRead');
/** See {@link TunWrite}. */
export const tunWrite: TunWrite = nativeFunction('tunWrite');

const tunOpen: (name: string, flags: number) => Tun = nativeFunction('tunOpen');

function nativeFunction<T>(name: string): T {
  const f = native[name];
  if (typeof f !== 'function') throw new Error(`tundra_native: missing export ${name}`);
  return f as T;
}
