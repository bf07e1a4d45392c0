// Readiness of a TUN or UDP fd, from the event loop (native/watch.cc: a libuv
// uv_poll_t on this thread's loop). Waiting never spins and never blocks; it works
// the same on the main thread and in worker threads.
import { native } from '../native/addon.js';

/**
 * Called when the fd is ready. `readable`/`writable` say which watched condition holds
 * (libuv polls level-triggered: it is called again on the next loop turn while the
 * condition lasts, so a callback that leaves data unread is simply called again).
 *
 * `error` is true when the kernel reported POLLERR; `readable`/`writable` are then the
 * conditions being watched, so a callback that just retries its I/O meets the error
 * there. For a socket the pending error is cleared (SO_ERROR) and watching goes on.
 * For anything else — a TUN whose interface was deleted — the condition is permanent,
 * so the watcher stops itself (no busy loop); watch() would resume it.
 */
export type FdEventHandler = (readable: boolean, writable: boolean, error: boolean) => void;

interface NativeFdWatcher {
  watch(readable: boolean, writable: boolean): void;
  close(): void;
  ref(): void;
  unref(): void;
  readonly fd: number;
  readonly closed: boolean;
}

const NativeFdWatcher = native.FdWatcher as new (fd: number, onEvent: FdEventHandler) => NativeFdWatcher;
if (typeof NativeFdWatcher !== 'function') throw new Error('tundra_native: missing export FdWatcher');

/**
 * Watches one fd for readability and/or writability.
 *
 * - Created stopped; `watch(true, false)` starts it. While watching it keeps the
 *   process (or worker) alive, like a socket would; `unref()` lets the loop end
 *   anyway, `ref()` undoes that. An active watcher stays alive even if you drop it.
 * - `onEvent` runs inside a proper callback scope: `process.nextTick` and promise jobs
 *   run after it, and an exception it throws is an uncaught exception ('uncaughtException',
 *   or the process / worker ends with it), never a crash.
 * - `close()` stops it for good and frees the libuv handle; it is safe to call twice
 *   and from inside `onEvent` (no further call is made). Calls after close() are no-ops.
 * - A worker (or the process) may exit with watchers open: they are closed during the
 *   environment's cleanup.
 * - Close the watcher before closing its fd. (closeFd stops any watcher of the fd
 *   on this thread anyway — libuv would abort the process on a closed fd it still
 *   watches — after which watch() throws EBADF.)
 * - One watcher per fd per thread: a second one throws EEXIST. A regular file cannot
 *   be watched (EPERM); a closed fd throws EBADF.
 */
export class FdWatcher {
  readonly #native: NativeFdWatcher;

  constructor(fd: number, onEvent: FdEventHandler) {
    this.#native = new NativeFdWatcher(fd, onEvent);
  }

  /** Sets what to wait for; `watch(false, false)` stops watching (the watcher stays usable). */
  watch(readable: boolean, writable: boolean): void {
    this.#native.watch(readable, writable);
  }

  close(): void {
    this.#native.close();
  }

  /** Keeps the event loop alive while watching (the default). */
  ref(): void {
    this.#native.ref();
  }

  /** Lets the event loop end while this watcher is still watching. */
  unref(): void {
    this.#native.unref();
  }

  get fd(): number {
    return this.#native.fd;
  }

  get closed(): boolean {
    return this.#native.closed;
  }
}
