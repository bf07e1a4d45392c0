// CoDel (RFC 8289) over the UDP socket's receive queue, the queue that stands when a
// bulk flow sends faster than tundra opens. tundra cannot take datagrams out of the
// kernel's queue, but it knows how long each batch's newest datagram waited there
// (SO_TIMESTAMPNS): when that stayed at or above `target` for a whole `interval`, it
// signals congestion on datagrams as it reads them, more often the longer the queue
// stands (interval / √count apart), and stops as soon as a batch waited less or took
// the last datagram queued (RFC 8289's "queue nearly empty": a lone packet that waited
// behind other work is no standing queue). The inbound stage carries the signal out: a
// CE mark on an ECN-capable datagram, a drop before opening for a Not-ECT one
// (docs/design.md §5).

/** The AQM's two numbers, as fq_codel names them; `targetMs` 0 switches it off. */
export interface AqmSettings {
  readonly targetMs: number;
  readonly intervalMs: number;
}

/** fq_codel's defaults. */
export const DEFAULT_AQM: AqmSettings = { targetMs: 5, intervalMs: 100 };

export class CoDel {
  /** When a queue above target allows signalling (0: the last sample was below target). */
  private firstAbove = 0;
  private signalling = false;
  /** When the next signal is due, while signalling. */
  private next = 0;
  /** Signals in this episode (carried over when a new one starts soon after), and at its start. */
  private count = 0;
  private lastCount = 0;

  constructor(private readonly settings: AqmSettings) {}

  /**
   * A batch of `n` datagrams was read at `now` (ms, monotonic); its newest had waited
   * `sojournMs` in the socket, and `drained` says it left the socket empty. Returns how
   * many of them to signal (0 to n).
   */
  signals(now: number, sojournMs: number, n: number, drained: boolean): number {
    const { intervalMs } = this.settings;
    const standing = this.standing(now, sojournMs, drained);
    if (this.signalling) {
      if (!standing) {
        this.signalling = false;
        return 0;
      }
      let k = 0;
      for (; k < n && now >= this.next; k++) {
        this.count++;
        this.next = this.controlLaw(this.next);
      }
      // Still behind after a whole batch (reads paused): go on from now, not in a burst.
      if (now >= this.next) this.next = this.controlLaw(now);
      return k;
    }
    if (!standing || n === 0) return 0;
    this.signalling = true;
    // Back soon after the last episode: start near its rate (RFC 8289 §5.6).
    const delta = this.count - this.lastCount;
    this.count = delta > 1 && now - this.next < 16 * intervalMs ? delta : 1;
    this.lastCount = this.count;
    this.next = this.controlLaw(now);
    return 1;
  }

  /** Whether the queue has stood at or above target, never drained, for an interval. */
  private standing(now: number, sojournMs: number, drained: boolean): boolean {
    if (sojournMs < this.settings.targetMs || drained) {
      this.firstAbove = 0;
      return false;
    }
    if (this.firstAbove === 0) {
      this.firstAbove = now + this.settings.intervalMs;
      return false;
    }
    return now >= this.firstAbove;
  }

  private controlLaw(t: number): number {
    return t + this.settings.intervalMs / Math.sqrt(this.count);
  }
}
