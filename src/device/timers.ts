// The control plane's timer: one OS timer, armed at the engine's earliest deadline
// (its timer queue holds every peer's), that runs the due peers a slice at a time.
import type { Engine } from '../protocol/engine.js';

/** Peers whose due timers one turn of the event loop runs (an initiation each, at most: ~0.1 ms). */
const TIMER_SLICE = 64;
/**
 * The timer wakes at the end of the TIMER_SLOT_MS slot its deadline falls in, so peers
 * due in one slot share one wakeup and one sendmmsg: 2,000 retrying peers are 400
 * initiations a second. WireGuard's timers are seconds long; the kernel's timer wheel
 * fires them later than this (up to 1/8 of their length).
 */
const TIMER_SLOT_MS = 50;

export class DeviceTimer {
  private timer: NodeJS.Timeout | undefined;
  private deadline = Infinity;
  private closed = false;

  /** `afterWork` runs after each slice: it sends what the timers queued and arms the timer again. */
  constructor(private readonly engine: Engine, private readonly afterWork: () => void) {}

  /** Arms the timer for the engine's next deadline, unless it is armed for an earlier one. */
  arm(): void {
    if (this.closed) return;
    const due = this.engine.nextDeadline();
    if (due === undefined) return;
    const deadline = Math.ceil(due / TIMER_SLOT_MS) * TIMER_SLOT_MS;
    if (deadline >= this.deadline) return;
    clearTimeout(this.timer);
    this.deadline = deadline;
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.ceil(deadline - this.engine.now())));
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  /**
   * Runs the due timers TIMER_SLICE peers at a time: between slices the thread serves
   * what came in meanwhile (handshake messages of peers that answer, the UAPI).
   */
  private fire(): void {
    this.timer = undefined;
    this.deadline = Infinity;
    const more = this.engine.poll(TIMER_SLICE);
    if (more && !this.closed) {
      this.deadline = -Infinity;
      this.timer = setTimeout(() => this.fire(), 0);
    }
    this.afterWork();
  }
}
