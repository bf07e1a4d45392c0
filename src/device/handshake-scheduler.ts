// The control plane's handshake work, a slice at a time. Handshake messages wait in
// each queue's lanes (src/dataplane/handshake-lanes.ts); a slice takes them, the priority
// lanes first, for at most SLICE_MS, sends what they produced at once, and hands the
// thread back to the event loop before the next slice: timers, the UAPI socket,
// signals, the control channel and sends all get their turn between slices, however
// long the backlog. Each slice judges the load by the backlog's depth and age, and by
// whether a writer is cutting a flood, and tells the lanes' writers through the gate.
import { readAddr } from '../pipeline/address.js';
import type { Engine } from '../protocol/engine.js';
import type { HandshakeGate, LaneReader } from '../dataplane/handshake-lanes.js';

/** Work per slice: a few Diffie-Hellman handshakes, or a hundred cookie replies. */
const SLICE_MS = 2;
/** How long a doorbell wait lasts before the waiter looks again (it also ends on close). */
const DOORBELL_WAIT_MS = 1000;

export class HandshakeScheduler {
  private readonly readers: LaneReader[] = [];
  private scheduled = false;
  private closed = false;
  /** Watchers waiting for the lanes to run dry before they wait on their doorbells again. */
  private drainedWaiters: (() => void)[] = [];
  /** Where the next slice starts, so one busy queue does not always go first. */
  private next = 0;

  /** `afterWork` sends what a slice produced and re-arms the timers. */
  constructor(private readonly engine: Engine, private readonly gate: HandshakeGate, private readonly afterWork: () => void) {}

  /** Serves `reader`'s lanes from now on (until close). */
  add(reader: LaneReader): void {
    this.readers.push(reader);
    void this.watch(reader);
  }

  /** Messages waiting in every lane. */
  get waiting(): number {
    let n = 0;
    for (const r of this.readers) n += r.waiting;
    return n;
  }

  close(): void {
    this.closed = true;
    for (const r of this.readers) r.close();
    this.wakeDrainedWaiters();
  }

  private async watch(reader: LaneReader): Promise<void> {
    while (!this.closed && !reader.isClosed) {
      await reader.waitNotEmptyAsync(DOORBELL_WAIT_MS);
      if (reader.waiting === 0) continue;
      this.schedule();
      await new Promise<void>((resolve) => this.drainedWaiters.push(resolve));
    }
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => this.slice());
  }

  /** One slice (tests call it directly); whether messages still wait after it. */
  slice(): boolean {
    this.scheduled = false;
    if (this.closed) return false;
    const engine = this.engine;
    const started = engine.now();
    let capacity = 0;
    for (const r of this.readers) capacity += r.capacity;
    let judged = false;
    let now = started;
    do {
      const reader = this.pop();
      if (reader === undefined) break;
      if (!judged) {
        // The backlog as this slice finds it: its depth, and the age of its head.
        engine.noteHandshakeBacklog(this.waiting + 1, capacity, reader.waited(now));
        if (this.gate.cutting(now)) engine.noteUnderLoad();
        judged = true;
      }
      engine.receive(reader.message(), readAddr(reader.addr, 0));
      now = engine.now();
    } while (now - started < SLICE_MS);
    this.gate.set(engine.underLoadUntil);
    this.afterWork();
    const more = this.waiting > 0;
    if (more) this.schedule();
    else this.wakeDrainedWaiters();
    return more;
  }

  /** Pops the next message, priority lanes first, taking the queues in turn; its reader, or undefined. */
  // Bounds: (next + k) % count < count = readers.length, for next ≥ 0 (it is only ever set to a value mod count or 0).
  private pop(): LaneReader | undefined {
    const count = this.readers.length;
    for (const lane of ['priority', 'bulk'] as const) {
      for (let k = 0; k < count; k++) {
        const reader = this.readers[(this.next + k) % count]!;
        if (reader.pop(lane)) {
          this.next = (this.next + k + 1) % count;
          return reader;
        }
      }
    }
    return undefined;
  }

  private wakeDrainedWaiters(): void {
    const waiters = this.drainedWaiters;
    this.drainedWaiters = [];
    for (const wake of waiters) wake();
  }
}
