// The data path's threads run at a raised priority, nice -10 by default, as the kernel's
// WireGuard handles packets in softirq ahead of applications: on a loaded machine a
// packet then waits less for a core. Linux keeps a nice value per thread, and
// setpriority(PRIO_PROCESS, 0) sets the calling thread's, so each data-path thread
// (queue workers, crypto workers, the main thread in the inline mode) sets its own; the
// control plane on the main thread keeps the process's.
import { getPriority, setPriority } from 'node:os';
import type { Logger } from '../log.js';

/** The data path's nice value when neither --nice nor TUNDRA_NICE says. */
export const DEFAULT_NICE = -10;

/**
 * The nice value the data path can have: `nice` when this process may take it (tried
 * on the calling thread and undone), else the thread's own, with a log line saying why.
 */
export function usableNice(nice: number, log: Logger): number {
  const own = getPriority(0);
  if (nice >= own) return nice; // a lower priority needs no privilege
  try {
    setPriority(0, nice);
    setPriority(0, own);
    return nice;
  } catch (err) {
    log.verbose(`The data path stays at nice ${own}: nice ${nice} was refused (${(err as Error).message}); it needs CAP_SYS_NICE or a higher RLIMIT_NICE`);
    return own;
  }
}

/** Sets the calling thread's nice value; one usableNice() allowed cannot fail, and nothing else is at stake if it does. */
export function setThreadNice(nice: number): void {
  try {
    if (getPriority(0) !== nice) setPriority(0, nice);
  } catch {
    // The thread keeps its priority: only latency under load differs.
  }
}
