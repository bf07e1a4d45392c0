// Telling a lost wake-up from a slow scheduler (the suite must pass on a busy
// machine). A test that counts every long wait as a lost wake-up fails whenever the
// machine is busy: the other thread was descheduled, or still starting up, or the waiter
// was woken at once but waited for a CPU. A lost wake-up is something else: the step the
// waiter waits for was done, wake-up call included, and the waiter stayed ASLEEP — not on
// a CPU and not waiting for one — until its wait timed out (a ring's wait then finds the
// entry and returns true, so only the time shows it).
//
// So the side that makes a step another thread waits for stamps when its call returned
// (Stamps.mark), and the waiter judges each wait that ended long after that stamp
// (WakeJudge): of the time since the stamp, whatever the thread spent running or
// runnable (the kernel's /proc/thread-self/schedstat: time on a CPU plus time in a run
// queue) is the scheduler's; only the rest is sleep through a wake-up that never came.
// A correct ring leaves none of that (it wakes the waiter when the step is done), so
// `lost` counts waits that slept asleepMs or more after the step was done, however busy
// the machine is; `slow` counts the long waits the scheduler explains.
import { readFileSync } from 'node:fs';

/**
 * Milliseconds this thread has spent on a CPU or runnable and waiting for one, from
 * /proc/thread-self/schedstat (its first two fields, in ns). Undefined where the kernel
 * keeps no such numbers (no CONFIG_SCHED_INFO): then every long wait after a stamp counts
 * as lost, as before this rule — a busy machine can make such a kernel's tests fail.
 */
export function awakeMs(): number | undefined {
  try {
    const [onCpu, inQueue] = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ');
    const ms = (Number(onCpu) + Number(inQueue)) / 1e6;
    return Number.isFinite(ms) ? ms : undefined;
  } catch {
    return undefined;
  }
}

/** The shared part of Stamps: post it to a worker. */
export interface StampsShared {
  readonly buffer: SharedArrayBuffer;
  /** Date.now() of the run: stamps are ms since then, plus 1 (0 is "not yet"). */
  readonly base: number;
}

/** One stamp per round: when the step of that round was done (its call had returned). */
export class Stamps {
  private readonly at: Int32Array;
  private readonly base: number;

  static create(rounds: number, base = Date.now()): StampsShared {
    return { buffer: new SharedArrayBuffer(rounds * 4), base };
  }

  constructor(s: StampsShared) {
    this.at = new Int32Array(s.buffer);
    this.base = s.base;
  }

  /** Call right after the push or pop of `round` returned: its wake-up call is made by then. */
  mark(round: number): void {
    Atomics.store(this.at, round, Date.now() - this.base + 1);
  }

  /** Date.now() when the step of `round` was marked, or undefined if not yet. */
  doneAt(round: number): number | undefined {
    const v = Atomics.load(this.at, round);
    return v === 0 ? undefined : this.base + v - 1;
  }
}

/** How long a waiter may keep an old /proc reading: it only adds awake time (see begin). */
const READING_MAX_AGE_MS = 5;

export class WakeJudge {
  /** Waits that slept asleepMs or more after their step was done: lost wake-ups. */
  lost = 0;
  /** Waits that ended asleepMs or more after their step was done, the scheduler's doing. */
  slow = 0;
  /** The longest sleep after a done step (ms), for the diagnostics. */
  worstAsleepMs = 0;
  private readonly done: Stamps;
  private began = 0;
  private readingAt = -Infinity;
  private reading: number | undefined;

  /**
   * `done`: the other side's stamps of the steps this thread waits for. `asleepMs`: the
   * sleep after a done step that counts as lost; less than the waits' own timeout, which
   * is how long a lost wake-up sleeps.
   */
  constructor(done: StampsShared, private readonly asleepMs: number) {
    this.done = new Stamps(done);
  }

  /**
   * Before a wait. Reads /proc at most every READING_MAX_AGE_MS, so the fast path stays
   * fast: an older reading adds the awake time before the wait to the sum, which can make
   * a wait look slow instead of lost, never the other way round. (Likewise the reading in
   * end() comes after its clock reading.)
   */
  begin(): void {
    const now = Date.now();
    if (now - this.readingAt >= READING_MAX_AGE_MS) {
      this.reading = awakeMs();
      this.readingAt = now;
    }
    // After the reading, which may be slow (the first one loads code): its time must not
    // count as asleep.
    this.began = Date.now();
  }

  /** After the wait for `round` got what it waited for. */
  end(round: number): void {
    const doneAt = this.done.doneAt(round);
    // Not stamped yet: the waiter had the entry before the other side's call returned.
    if (doneAt === undefined) return;
    const now = Date.now();
    const sinceDone = now - Math.max(doneAt, this.began);
    if (sinceDone < this.asleepMs) return;
    const awakeNow = awakeMs();
    const awake = awakeNow === undefined || this.reading === undefined ? 0 : awakeNow - this.reading;
    const asleep = sinceDone - awake;
    this.worstAsleepMs = Math.max(this.worstAsleepMs, asleep);
    if (asleep >= this.asleepMs) this.lost++;
    else this.slow++;
  }
}
