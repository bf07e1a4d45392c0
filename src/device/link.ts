// The interface as its TUN fd sees it, wherever it lives: it may have been renamed,
// or moved to another network namespace (`ip link set IF netns NS`, the UDP sockets
// stay here) and back, and still carries the traffic.
import { readFileSync } from 'node:fs';
import type { Logger } from '../log.js';
import { linkMtu, tunLink, tunName, type TunLink } from '../tun/tun.js';

export class InterfaceLink {
  /** The interface as the last poll saw it. */
  private seen: { name: string; callerNetns: boolean };
  /** Whether poll said once that it cannot look into the interface's namespace. */
  private fallbackSaid = false;

  constructor(private readonly fd: number, name: string, private readonly log: Logger) {
    this.seen = { name, callerNetns: true };
  }

  /**
   * Returns the interface's MTU (0 when it cannot be read this time), or undefined
   * once the interface was deleted, in whatever namespace or with its namespace.
   * Without the means to look into its namespace (Linux < 5.2, no CAP_NET_ADMIN) it
   * still notices the deletion, and reads the MTU of the interface of that name here.
   */
  poll(): number | undefined {
    const fd = this.fd;
    let link: TunLink;
    try {
      link = tunLink(fd);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EBADFD') return undefined;
      let name: string;
      try {
        name = tunName(fd);
      } catch (nameErr) {
        if ((nameErr as NodeJS.ErrnoException).code === 'EBADFD') return undefined;
        throw nameErr;
      }
      // Moved, renamed or deleted during the look: the next one sees.
      if (code === 'ENODEV' || (code === 'EINVAL' && (err as NodeJS.ErrnoException).syscall === 'RTM_GETLINK')) return 0;
      if (!this.fallbackSaid) {
        this.fallbackSaid = true;
        this.log.verbose(`Following the interface by name in this network namespace (${(err as Error).message})`);
      }
      const mtu = linkMtu(name);
      this.seen = { name, callerNetns: mtu > 0 };
      return mtu;
    }
    if (link.callerNetns !== this.seen.callerNetns) {
      this.log.verbose(link.callerNetns ? 'Interface is back in this network namespace' : 'Interface moved to another network namespace');
    }
    this.seen = { name: link.name, callerNetns: link.callerNetns };
    return link.mtu;
  }

  /** The interface's tx_dropped counter, wherever it lives; undefined when it cannot be read. */
  txDropped(): number | undefined {
    try {
      return tunLink(this.fd).txDropped;
    } catch {
      // /sys/class/net shows this namespace's interfaces only.
      return this.seen.callerNetns ? readInterfaceStatistic(this.seen.name, 'tx_dropped') : undefined;
    }
  }
}

/** A counter of /sys/class/net/NAME/statistics, or undefined when it cannot be read. */
function readInterfaceStatistic(name: string, counter: string): number | undefined {
  try {
    return Number(readFileSync(`/sys/class/net/${name}/statistics/${counter}`, 'utf8').trim());
  } catch {
    return undefined;
  }
}
