// File descriptors from the addon (TUN queues from ./tun.js, UDP sockets from ./udp.js).
import { nativeFunction } from '../native/addon.js';

/**
 * Closes an fd from openTun or udpOpen. Close its FdWatcher first; any watcher of the
 * fd on this thread is stopped here anyway (libuv would abort the process on meeting a
 * closed fd it watches), and watch() on it throws EBADF. Throws EBADF for an fd that
 * is not open.
 */
export const closeFd: (fd: number) => void = nativeFunction('closeFd');

/** A socket's SO_RCVBUF and SO_SNDBUF as the kernel granted them (control path; throws with the errno). */
export const socketBufferSizes: (fd: number) => [receive: number, send: number] = nativeFunction('socketBufferSizes');
