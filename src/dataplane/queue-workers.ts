// The main thread's side of the queue workers: it starts one worker per queue (a
// TUN queue and a UDP socket of the group, both opened and kept here), hands them
// the shared tables and route changes, applies what their control channels bring,
// and supervises them: a worker that dies is counted, the packets it had in hand are
// counted as lost, the replay locks it held are freed, and it is started again on
// the same fds, with a back-off when it keeps dying. The process never exits for it.
// With --workers N it also runs the crypto pool, and gives each queue its flights.
import { Worker } from 'node:worker_threads';
import type { CryptoBackendName } from '../crypto/backends.js';
import type { UdpSocket } from '../conn/udp.js';
import type { Logger, LogLevel } from '../log.js';
import { OffloadCounters } from '../offload/counters.js';
import type { OffloadSettings } from '../offload/settings.js';
import type { AqmSettings } from './codel.js';
import { queueLockOwner, type KeyTable, type KeyTableShared } from '../protocol/key-table.js';
import type { PeerTableShared } from '../protocol/peer-table.js';
import { BATCH_SIZE } from '../pipeline/batch.js';
import { createQueueFlights, POOL_FLIGHTS, type QueueFlightsShared, type QueuePool } from './flights.js';
import { QueueStats } from './queue-loop.js';
import { Drop, DropCounters } from '../protocol/drop-reasons.js';
import type { EngineControl } from '../stages/engine-control.js';
import type { SharedStageCounters, StageSpec } from '../stages/user-host.js';
import type { TunQueue } from '../tun/tun-port.js';
import { ChannelReader, createControlChannel, type ControlChannelShared } from './control-channel.js';
import { LaneReader, type HandshakeGate } from './handshake-lanes.js';
import { CryptoPool } from './crypto-pool.js';

/** What a queue worker starts from (structured-cloneable; buffers are shared, not copied). */
export interface QueueWorkerData {
  index: number;
  name: string;
  logLevel: LogLevel;
  tun: TunQueue;
  udp: UdpSocket;
  settings: OffloadSettings;
  aqm: AqmSettings;
  /** This thread's nice value (dataplane/priority.ts); undefined: the process's. */
  nice: number | undefined;
  keys: KeyTableShared;
  peers: PeerTableShared;
  routes: SharedArrayBuffer;
  mtu: number;
  crypto: CryptoBackendName;
  stages: readonly StageSpec[];
  drops: SharedArrayBuffer;
  offload: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  channel: ControlChannelShared;
  /** With a crypto pool: this queue's flights and the pool's rings. */
  flights?: QueueFlightsShared;
  pool?: QueuePool;
  /** The main thread's performance.timeOrigin: the engine's clock is the main thread's performance.now(). */
  timeOrigin: number;
}

export type ToQueueWorker =
  | { type: 'routes'; routes: SharedArrayBuffer }
  | { type: 'mtu'; mtu: number }
  /** Move to this socket (a new listen port) and answer udp-moved; the old one is closed after. */
  | { type: 'udp'; udp: UdpSocket }
  | { type: 'stop' };

export type FromQueueWorker = { type: 'ready'; stages?: SharedStageCounters } | { type: 'udp-moved' };

/** First wait before starting a dead worker again; doubled while it keeps dying, up to RESTART_MAX_MS. */
const RESTART_MIN_MS = 50;
const RESTART_MAX_MS = 5000;
/** A worker that lived this long has its back-off reset. */
const RESTART_STABLE_MS = 10_000;
/** How long a stopping worker may take to close its stages before it is terminated. */
const STOP_GRACE_MS = 2000;

export interface QueueWorkersOptions {
  name: string;
  log: Logger;
  tun: readonly TunQueue[];
  settings: OffloadSettings;
  aqm: AqmSettings;
  /** The nice value of the queue and crypto workers; undefined: the process's. */
  nice: number | undefined;
  keys: KeyTable;
  peers: PeerTableShared;
  crypto: CryptoBackendName;
  stages: readonly StageSpec[];
  /** Crypto pool workers that seal and open for the queues; 0: each queue worker does its own. */
  workers: number;
  control: EngineControl;
  /** Takes each queue's handshake lanes; the gate is its word to their writers. */
  handshakes: { add(reader: LaneReader): void; readonly gate: HandshakeGate };
  /** Counts what the supervisor sees (worker_batch_lost). */
  drops: DropCounters;
  /** After the control plane applied a channel's records: send what the engine queued. */
  afterWork(): void;
}

interface Queue {
  readonly index: number;
  readonly drops: DropCounters;
  readonly offload: OffloadCounters;
  readonly stats: QueueStats;
  readonly channel: ControlChannelShared;
  readonly reader: ChannelReader;
  readonly lanes: LaneReader;
  readonly flights: QueueFlightsShared | undefined;
  readonly pool: QueuePool | undefined;
  worker: Worker | undefined;
  startedAt: number;
  backoff: number;
  restartTimer: NodeJS.Timeout | undefined;
  restarts: number;
  /** Resolves the wait for the worker's udp-moved (also when it exits instead). */
  moved: (() => void) | undefined;
}

export class QueueWorkers {
  private readonly queues: Queue[];
  private readonly pool: CryptoPool | undefined;
  /** The stage counters of every worker instance ever started (a dead worker's stay counted). */
  readonly stageCounters: SharedStageCounters[] = [];
  private udp: readonly UdpSocket[] = [];
  private routes: SharedArrayBuffer;
  private mtu: number;
  private running = false;

  constructor(private readonly o: QueueWorkersOptions, routes: SharedArrayBuffer, mtu: number) {
    this.routes = routes;
    this.mtu = mtu;
    const perQueue = 2 * POOL_FLIGHTS;
    const flights = o.workers === 0 ? [] : o.tun.map((_, q) => createQueueFlights(q * perQueue, POOL_FLIGHTS, o.tun.length * perQueue));
    const poolShared = o.workers === 0 ? undefined
      : CryptoPool.share(o.keys.share(), o.crypto, BATCH_SIZE, flights.flatMap((f) => [...f.outbound, ...f.inbound]), o.tun.length, o.workers, o.nice);
    this.pool = poolShared === undefined ? undefined : new CryptoPool({ workers: o.workers, shared: poolShared, log: o.log });
    const pools = poolShared === undefined ? [] : poolShared.done.map((done, queue) => ({ jobs: poolShared.jobs, done, queue }));
    this.queues = o.tun.map((_, index) => {
      const channel = createControlChannel(o.handshakes.gate);
      const lanes = new LaneReader(channel.handshakes);
      o.handshakes.add(lanes);
      return {
        index, drops: new DropCounters(), offload: new OffloadCounters(), stats: new QueueStats(), channel,
        reader: new ChannelReader(channel, o.control, () => o.afterWork()), lanes,
        flights: flights[index],
        pool: pools[index],
        worker: undefined, startedAt: 0, backoff: RESTART_MIN_MS, restartTimer: undefined, restarts: 0,
        moved: undefined,
      };
    });
  }

  get count(): number {
    return this.queues.length;
  }

  /** Every queue's drop counters, for the device's totals. */
  get drops(): DropCounters[] {
    return this.queues.map((q) => q.drops);
  }

  /** Every queue's offload counters, likewise. */
  get offload(): OffloadCounters[] {
    return this.queues.map((q) => q.offload);
  }

  /**
   * Per queue: its counters, how often its worker was started again, the records
   * waiting in its control channel's rings, and with a pool
   * `flights_out`, its flights out in the pool now (0 when idle: none is ever stranded).
   */
  snapshot(): Record<string, number>[] {
    return this.queues.map((q) => ({
      ...q.stats.snapshot(), restarts: q.restarts, ring_tallies: q.reader.queued.tallies, ring_messages: q.reader.queued.messages,
      ring_handshakes: q.lanes.waiting,
      ...(q.flights === undefined ? {} : { flights_out: [...q.flights.outbound, ...q.flights.inbound].filter((f) => Atomics.load(q.flights!.out, f.id) === 1).length }),
    }));
  }

  /** The crypto pool's restarts and the batches it lost with them (undefined without a pool). */
  poolSnapshot(): { workers: number; restarts: number; lost_batches: number } | undefined {
    const p = this.pool;
    return p === undefined ? undefined : { workers: this.o.workers, restarts: p.restarts, lost_batches: p.lostJobs };
  }

  /**
   * Moves every queue to its socket in `udp` (a new listen port) and resolves when no
   * worker reads the old ones any more, so they can be closed. A worker that is
   * starting again starts on the new one.
   */
  async useSockets(udp: readonly UdpSocket[]): Promise<void> {
    this.setSockets(udp);
    await Promise.all(this.queues.map((q) => {
      const worker = q.worker;
      if (worker === undefined) return undefined;
      return new Promise<void>((resolve) => {
        q.moved = resolve;
        worker.postMessage({ type: 'udp', udp: this.socketOf(q) } satisfies ToQueueWorker);
      });
    }));
  }

  /**
   * Starts a worker per queue on `udp` (one socket per queue) and resolves when all
   * are ready; rejects with the first one's error (a stage that does not load).
   */
  async start(udp: readonly UdpSocket[]): Promise<void> {
    this.setSockets(udp);
    this.running = true;
    try {
      await Promise.all(this.queues.map((q) => this.spawn(q)));
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops every worker (their stages close) and resolves when all have exited; the fds stay open. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.queues.map(async (q) => {
      clearTimeout(q.restartTimer);
      const worker = q.worker;
      if (worker === undefined) return;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage({ type: 'stop' } satisfies ToQueueWorker);
      const timer = setTimeout(() => void worker.terminate(), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }));
  }

  /** Closes the control channels and the crypto pool (after stop()). */
  async close(): Promise<void> {
    for (const q of this.queues) q.reader.close();
    await this.pool?.close();
  }

  setRoutes(routes: SharedArrayBuffer): void {
    this.routes = routes;
    this.post({ type: 'routes', routes });
  }

  setMtu(mtu: number): void {
    this.mtu = mtu;
    this.post({ type: 'mtu', mtu });
  }

  private post(message: ToQueueWorker): void {
    for (const q of this.queues) q.worker?.postMessage(message);
  }

  /** One socket per queue, as the workers are told at start and on a new listen port. */
  private setSockets(udp: readonly UdpSocket[]): void {
    if (udp.length !== this.queues.length) throw new RangeError(`${udp.length} UDP sockets for ${this.queues.length} queues: one per queue`);
    this.udp = udp;
  }

  // Bounds: q.index < queues.length = udp.length (setSockets).
  private socketOf(q: Queue): UdpSocket {
    return this.udp[q.index]!;
  }

  // Bounds: q.index < queues.length = o.tun.length (the constructor makes one queue per TUN queue).
  private spawn(q: Queue): Promise<void> {
    const o = this.o;
    const data: QueueWorkerData = {
      index: q.index, name: o.name, logLevel: o.log.level, tun: o.tun[q.index]!, udp: this.socketOf(q), settings: o.settings, aqm: o.aqm, nice: o.nice,
      keys: o.keys.share(), peers: o.peers, routes: this.routes, mtu: this.mtu, crypto: o.crypto, stages: o.stages,
      drops: q.drops.share(), offload: q.offload.share(), stats: q.stats.share(), channel: q.channel, timeOrigin: performance.timeOrigin,
      ...(q.flights === undefined ? {} : { flights: q.flights }), ...(q.pool === undefined ? {} : { pool: q.pool }),
    };
    const worker = new Worker(new URL('./queue-worker.js', import.meta.url), { workerData: data, name: `tundra queue-${q.index}` });
    q.worker = worker;
    q.startedAt = performance.now();
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      let failure: Error | undefined;
      worker.on('message', (message: FromQueueWorker) => {
        if (message.type === 'udp-moved') {
          q.moved?.();
          q.moved = undefined;
        }
        if (message.type !== 'ready') return;
        ready = true;
        if (message.stages !== undefined) this.stageCounters.push(message.stages);
        // Routes or an MTU that changed while it started.
        if (this.routes !== data.routes) worker.postMessage({ type: 'routes', routes: this.routes } satisfies ToQueueWorker);
        if (this.mtu !== data.mtu) worker.postMessage({ type: 'mtu', mtu: this.mtu } satisfies ToQueueWorker);
        resolve();
      });
      worker.on('error', (err) => {
        failure = err;
        if (ready) o.log.error(`queue-${q.index} worker died: ${err.stack ?? err.message}`);
      });
      worker.on('exit', (code) => {
        if (q.worker === worker) q.worker = undefined;
        q.moved?.();
        q.moved = undefined;
        if (!ready) {
          reject(failure ?? new Error(`queue-${q.index} worker exited with code ${code} before it was ready`));
          return;
        }
        if (this.running) this.died(q, code);
      });
    });
  }

  private died(q: Queue, code: number): void {
    const lost = q.stats.takeInHand();
    if (lost > 0) this.o.drops.add(Drop.WorkerBatchLost, lost);
    this.o.keys.releaseReplayLocks(queueLockOwner(q.index));
    q.restarts++;
    if (performance.now() - q.startedAt > RESTART_STABLE_MS) q.backoff = RESTART_MIN_MS;
    const wait = q.backoff;
    q.backoff = Math.min(RESTART_MAX_MS, q.backoff * 2);
    this.o.log.error(`queue-${q.index} worker exited (code ${code}) with ${lost} packets in hand; starting it again in ${wait} ms`);
    q.restartTimer = setTimeout(() => {
      q.restartTimer = undefined;
      if (!this.running) return;
      this.spawn(q).catch((err: Error) => {
        this.o.log.error(`queue-${q.index} worker did not start again: ${err.message}`);
        if (this.running) this.died(q, -1);
      });
    }, wait);
  }
}
