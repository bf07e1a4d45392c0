// The data path's threads may run at another priority than the rest (--nice): a router
// or exit node whose main job is the tunnel can put its packets ahead of other work, as
// the kernel's WireGuard delivers them in softirq. Linux keeps a nice value per thread,
// and setpriority(PRIO_PROCESS, 0) sets the calling thread's, so each data-path thread
// (queue workers, crypto workers, the main thread in the inline mode) sets its own; the
// control plane on the main thread keeps the process's.
import { getPriority, setPriority } from 'node:os';
import type { Logger } from '../log.js';

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
    log.warning(`--nice: the data path stays at nice ${own}: nice ${nice} was refused (${(err as Error).message}); it needs CAP_SYS_NICE or a higher RLIMIT_NICE`);
    return own;
  }
}

/** Sets the calling thread's nice value (undefined: leaves it); one usableNice() allowed cannot fail, and nothing else is at stake if it does. */
export function setThreadNice(nice: number | undefined): void {
  try {
    if (nice !== undefined && getPriority(0) !== nice) setPriority(0, nice);
  } catch {
    // The thread keeps its priority: only latency under load differs.
  }
}
