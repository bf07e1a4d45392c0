// The crypto pool (--workers N): long-lived piscina workers that seal and open
// whole batches for the queue workers, so that one flow's AEAD is not bound to its
// queue's thread. piscina starts and supervises the threads; each runs one task
// that never returns while the pool is up (src/dataplane/crypto-worker.ts), fed by a
// ring: a queue worker pushes a job naming one of its flights (a batch and its
// stage's scratch, in shared memory), a pool worker seals or opens it in place and
// pushes the flight back to that queue's done ring; the queue worker then finishes
// its flights in the order it read them. No message and no allocation per batch.
//
// A pool task that fails (an exception, or its thread died) is counted and run again;
// the job it had in hand is returned to its queue as lost (dropped and counted there),
// so no flight is ever stranded.
import { Piscina } from 'piscina';
import type { CryptoBackendName } from '../crypto/backends.js';
import type { Logger } from '../log.js';
import type { KeyTableShared } from '../protocol/key-table.js';
import { MpmcRing, type RingShared } from '../pipeline/ring.js';
import { JOB_WORDS, type FlightViews } from './flights.js';

/** What a pool worker starts from (workerData; all in shared memory). */
export interface CryptoPoolShared {
  readonly keys: KeyTableShared;
  readonly crypto: CryptoBackendName;
  readonly slots: number;
  /** Every queue's flights, flights[id].id === id. */
  readonly flights: readonly FlightViews[];
  readonly jobs: RingShared;
  /** One completion ring per queue. */
  readonly done: readonly RingShared[];
  /** STATUS_STOP, then STATUS_WORDS per task: the job in hand (flight + 1, 0 = none), its epoch, queue and use. */
  readonly status: SharedArrayBuffer;
  /** The workers' nice value (dataplane/priority.ts); undefined: the process's. */
  readonly nice: number | undefined;
}

export const STATUS_STOP = 0;
export const STATUS_WORDS = 4;
/** Where task `task`'s status words start. */
export const statusAt = (task: number): number => 1 + task * STATUS_WORDS;
/** How long a pool worker sleeps on an empty ring before it looks at STATUS_STOP again. */
export const POOL_POLL_MS = 200;

/** What each long-lived task is given. */
export interface CryptoTask {
  readonly task: number;
}

const RESTART_MS = 50;

export interface CryptoPoolOptions {
  workers: number;
  shared: CryptoPoolShared;
  log: Logger;
  /** The task module (tests give another that fails on purpose). */
  filename?: string;
}

export class CryptoPool {
  private readonly piscina: Piscina;
  private readonly status: Int32Array;
  private readonly done: MpmcRing[];
  private readonly running: Promise<void>[] = [];
  private stopping = false;
  /** Tasks that failed and were run again. */
  restarts = 0;
  /** Jobs returned to their queue as lost because the task holding them failed. */
  lostJobs = 0;

  constructor(private readonly o: CryptoPoolOptions) {
    this.status = new Int32Array(o.shared.status);
    this.done = o.shared.done.map((d) => MpmcRing.attach(d));
    this.piscina = new Piscina({
      filename: o.filename ?? new URL('./crypto-worker.js', import.meta.url).href,
      minThreads: o.workers,
      maxThreads: o.workers,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: 1,
      recordTiming: false,
      workerData: o.shared,
    });
    for (let task = 0; task < o.workers; task++) this.running.push(this.serve(task));
  }

  /** Makes the shared part for `workers` tasks over `flights`, with `queues` completion rings. */
  static share(
    keys: KeyTableShared, crypto: CryptoBackendName, slots: number, flights: readonly FlightViews[], queues: number, workers: number, nice?: number,
  ): CryptoPoolShared {
    const capacity = 1 << Math.ceil(Math.log2(Math.max(2, flights.length)));
    return {
      keys, crypto, slots, flights,
      jobs: new MpmcRing(capacity, JOB_WORDS).share(),
      done: Array.from({ length: queues }, () => new MpmcRing(capacity, JOB_WORDS).share()),
      status: new SharedArrayBuffer(4 * (1 + workers * STATUS_WORDS)),
      nice,
    };
  }

  /** Stops the tasks (they finish the job in hand) and the threads. */
  async close(): Promise<void> {
    this.stopping = true;
    Atomics.store(this.status, STATUS_STOP, 1);
    await Promise.all(this.running);
    await this.piscina.destroy();
  }

  private async serve(task: number): Promise<void> {
    while (!this.stopping) {
      try {
        await this.piscina.run({ task } satisfies CryptoTask);
        return; // it returns only when told to stop
      } catch (err) {
        if (this.stopping) return;
        this.restarts++;
        const lost = this.returnLost(task);
        this.o.log.error(`crypto worker task ${task} failed${lost ? ' with a batch in hand (dropped)' : ''}: ${(err as Error).message}; running it again`);
        await new Promise((r) => setTimeout(r, RESTART_MS));
      }
    }
  }

  /**
   * The job a failed task held goes back to its queue as lost; whether there was one.
   * Bounds: serve() stores a job's queue in the status words only after checking it is < done.length (crypto-worker.ts).
   */
  private returnLost(task: number): boolean {
    const at = statusAt(task);
    const flight = Atomics.load(this.status, at) - 1;
    if (flight < 0) return false;
    const entry = Uint32Array.of(flight, Atomics.load(this.status, at + 1), 1, Atomics.load(this.status, at + 3));
    const queue = Atomics.load(this.status, at + 2);
    Atomics.store(this.status, at, 0);
    this.lostJobs++;
    // The ring has room for every flight, so this cannot fail. If the task died after
    // pushing the completion itself, this one is a duplicate its queue ignores (`use`).
    this.done[queue]!.tryPush(entry);
    return true;
  }
}
