// The data path of one queue: a TUN queue and a UDP socket tied together by the
// outbound and inbound stages, on the event loop of the thread that runs it (the
// main thread in the inline mode, a queue worker otherwise). libuv tells us when
// the TUN or the socket is readable, and each wakeup moves whole batches
// (docs/design.md §2). One thread per queue keeps each reader's batches in order: a
// flow read from TUN queue k is sealed and sent by queue k's thread, and what
// socket k receives is opened, checked and written to TUN queue k — the queue the
// kernel then reads that flow's replies from.
//
// A batch in the loop is a flight: a batch and the scratch of the stage that works on
// it. Without a crypto pool there is one flight per direction and each batch is
// sealed or opened here, between its two halves. With a pool (src/dataplane/crypto-
// pool.ts) several flights per direction are out at once: prepared here, sealed or
// opened by a pool worker, and finished here strictly in the order they were read,
// so the pool's reordering never reaches the wire or the TUN. When every flight of a
// direction is out, its fd is not watched until one comes back.
//
// The ICMP "destination unreachable" errors the outbound stage writes while it
// prepares a batch (src/stages/unreachable.ts) go back into this thread's TUN
// queue right after, in one batch write: prepare always runs here, never in the pool.
import { Drop, type DropCounters } from '../protocol/drop-reasons.js';
import { MESSAGE_TRANSPORT_HEADER_SIZE } from '../protocol/constants.js';
import type { UdpSocket } from '../conn/udp.js';
import { FdWatcher } from '../io/watch.js';
import { DONE_LOST, JOB_EPOCH, JOB_FLIGHT, JOB_QUEUE, JOB_USE, JOB_WORDS, type FlightViews, type QueueFlightsShared, type QueuePool } from './flights.js';
import { MpmcRing } from '../pipeline/ring.js';
import type { Logger } from '../log.js';
import type { OffloadCounters } from '../offload/counters.js';
import type { OffloadSettings } from '../offload/settings.js';
import { InboundStage, type InboundContext, type InboundControl } from '../stages/inbound.js';
import { OutboundStage, type OutboundContext, type OutboundControl } from '../stages/outbound.js';
import { TunPort, type TunQueue } from '../tun/tun-port.js';
import { UdpPort, type SourceGone } from '../conn/udp-port.js';
import { BATCH_SIZE, PacketBatch, SLOT_SIZE } from '../pipeline/batch.js';
import { UnreachableReplies } from '../stages/unreachable.js';
import { CoDel, type AqmSettings } from './codel.js';
import type { RouteTable } from '../routing/route-table.js';
/**
 * Smaller batches are sealed or opened here even with a pool: a hand-off each way costs
 * more than sealing a few packets (tens of µs against ~1 µs each), and an idle
 * tunnel's ping then crosses no extra thread.
 */
export const POOL_MIN_PACKETS = 16;
/** Inbound packets start after the transport header in their slot and may grow to its end when coalesced. */
const COALESCE_CAPACITY = SLOT_SIZE - MESSAGE_TRANSPORT_HEADER_SIZE;

/** A queue's counters, in shared memory so the main thread reads them (also after its worker died). */
export const QUEUE_STAT_NAMES = [
  'tun_read_packets', 'udp_sent_datagrams', 'udp_received_datagrams', 'tun_written_packets', 'pool_batches',
  'icmp_unreachable_sent', 'icmp_unreachable_rate_limited', 'aqm_ce_marked', 'socket_sojourn_batches', 'socket_sojourn_seconds_sum',
] as const;
const TUN_READ = 0;
const UDP_SENT = 1;
const UDP_RECEIVED = 2;
const TUN_WRITTEN = 3;
/** Batches handed to the crypto pool. */
const POOL_BATCHES = 4;
/** ICMP errors written to the TUN for packets no peer could take, and those the rate limit held back. */
const ICMP_SENT = 5;
const ICMP_LIMITED = 6;
/** Datagrams the AQM marked CE (its drops are counted as the `queue_delay` drop). */
const AQM_MARKED = 7;
/** Received batches with a socket sojourn, and the sum of their oldest datagram's. */
const SOJOURN_BATCHES = 8;
const SOJOURN_SUM = 9;
/** Packets in hand (read, not yet sent or written): what is lost if the thread dies now. */
const IN_HAND = QUEUE_STAT_NAMES.length;

export class QueueStats {
  readonly values: Float64Array;

  constructor(buffer?: SharedArrayBuffer) {
    this.values = new Float64Array(buffer ?? new SharedArrayBuffer(8 * (IN_HAND + 1)));
    if (this.values.length !== IN_HAND + 1) throw new RangeError(`queue stats need ${IN_HAND + 1} float64s, not ${this.values.length}`);
  }

  share(): SharedArrayBuffer {
    return this.values.buffer as SharedArrayBuffer;
  }

  /** Packets the thread had in hand; the caller counts them as lost when the thread died. Bounds: IN_HAND < values.length (constructor). */
  takeInHand(): number {
    const n = this.values[IN_HAND]!;
    this.values[IN_HAND] = 0;
    return n;
  }

  /**
   * The counters, and `in_hand`: packets in the thread's hands now (0 when idle).
   * Bounds: i < QUEUE_STAT_NAMES.length = IN_HAND < values.length (constructor).
   */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [i, name] of QUEUE_STAT_NAMES.entries()) out[name] = this.values[i]!;
    out.in_hand = this.values[IN_HAND]!;
    return out;
  }
}

/** The control plane's clock, compiled routes and MTU, as this thread sees them. */
export interface ControlTables {
  now(): number;
  routes(): RouteTable;
  mtu(): number;
}

export interface QueueLoopOptions {
  tun: TunQueue;
  udp: UdpSocket;
  settings: OffloadSettings;
  counters: OffloadCounters;
  stats: QueueStats;
  log: Logger;
  outbound: OutboundContext;
  inbound: InboundContext;
  /** The stages' control plane, which also hears of sticky source addresses found gone on send. */
  control: OutboundControl & InboundControl & { sourceGone: SourceGone };
  /** Where the contexts are brought up to date from before each batch. */
  tables: ControlTables;
  /** After each wakeup's work: hand what the control plane needs on. */
  afterWork(): void;
  /** The receive queue's AQM (targetMs 0: none). */
  aqm: AqmSettings;
  /** The flights, when a crypto pool seals and opens them (absent: one per direction, sealed here). */
  flights?: QueueFlightsShared;
  pool?: QueuePool;
}

type FlightState = 'free' | 'busy' | 'done' | 'lost' | 'orphan';

interface Flight<S> {
  readonly id: number;
  readonly inbound: boolean;
  readonly batch: PacketBatch;
  readonly stage: S;
  state: FlightState;
  /** Uses of this flight by this thread: a completion names the use it is for. */
  use: number;
  /** Packets read into it. */
  count: number;
}

/** What differs between a queue's two directions: where batches come from, the stage's halves, where they go. */
interface Direction<S> {
  /** For the error line when reading fails. */
  readonly what: string;
  /** The QueueStats slot that counts what was read. */
  readonly stat: number;
  read(batch: PacketBatch): number;
  /** More packets wait in the port (cut from a super-packet), not in the kernel. */
  pending(): boolean;
  /** Watches (true) or stops watching (false) the fd. */
  watch(on: boolean): void;
  /** The half before sealing or opening; returns the packets to seal or open. */
  prepare(f: Flight<S>): number;
  /** Seals or opens here. */
  crypt(f: Flight<S>): void;
  /** The in-order half, and the send or TUN write after it. */
  finish(f: Flight<S>): void;
  /** The drop counters of this direction. */
  readonly drops: DropCounters;
}

/** One direction: its free flights, and the ones in hand in read order. */
class Lane<S> {
  readonly free: Flight<S>[];
  readonly inOrder: Flight<S>[] = [];
  paused = false;
  constructor(flights: readonly Flight<S>[], readonly d: Direction<S>) {
    this.free = flights.filter((f) => f.state === 'free');
  }
}

export class QueueLoop {
  readonly tun: TunPort;
  private port: UdpPort;
  private readonly out: Lane<OutboundStage>;
  private readonly in: Lane<InboundStage>;
  private readonly stats: Float64Array;
  private readonly tunWatcher: FdWatcher;
  private readonly jobs: MpmcRing | undefined;
  private readonly done: MpmcRing | undefined;
  private readonly flightOut: Int32Array | undefined;
  private readonly byId = new Map<number, Flight<OutboundStage> | Flight<InboundStage>>();
  private readonly job = new Uint32Array(JOB_WORDS);
  private readonly completion = new Uint32Array(JOB_WORDS);
  private readonly epoch: number;
  private readonly unreachable = new UnreachableReplies();
  private readonly codel: CoDel | undefined;
  private closed = false;
  /** The TUN queue answered EBADFD: the interface is gone. */
  private tunGone = false;

  constructor(private readonly o: QueueLoopOptions) {
    this.stats = o.stats.values;
    this.codel = o.aqm.targetMs > 0 ? new CoDel(o.aqm) : undefined;
    this.tun = new TunPort(o.tun, o.counters, o.log, BATCH_SIZE);
    o.outbound.unreachable = this.unreachable;
    o.outbound.listenPort = o.udp.port;
    this.port = this.udpPort(o.udp);
    const shared = o.pool === undefined ? undefined : o.flights;
    this.epoch = shared === undefined ? 0 : Atomics.add(shared.epoch, 0, 1) + 1;
    this.flightOut = shared?.out;
    // A flight a dead predecessor left out in the pool is an orphan until it comes back.
    const state = (id: number): FlightState => (shared !== undefined && Atomics.load(shared.out, id) === 1 ? 'orphan' : 'free');
    const flight = <S>(v: FlightViews | undefined, stage: S): Flight<S> => {
      const f: Flight<S> = {
        id: v?.id ?? -1, inbound: stage instanceof InboundStage, batch: v === undefined ? new PacketBatch(BATCH_SIZE, SLOT_SIZE) : PacketBatch.fromViews(BATCH_SIZE, SLOT_SIZE, v.batch),
        stage, state: v === undefined ? 'free' : state(v.id), use: 0, count: 0,
      };
      if (v !== undefined) this.byId.set(v.id, f as Flight<OutboundStage> | Flight<InboundStage>);
      return f;
    };
    this.out = new Lane(shared === undefined ? [flight(undefined, new OutboundStage(BATCH_SIZE))]
      : shared.outbound.map((v) => flight(v, new OutboundStage(BATCH_SIZE, v.scratch))), {
      what: 'TUN read',
      stat: TUN_READ,
      read: (batch) => this.tun.read(batch),
      pending: () => this.tun.pending,
      watch: (on) => this.tunWatcher.watch(on, false),
      prepare: (f) => {
        const rows = f.stage.prepare(f.batch, o.outbound, o.control);
        this.writeUnreachable();
        return rows;
      },
      crypt: (f) => f.stage.seal(f.batch.data, o.outbound),
      finish: (f) => {
        if (f.stage.finish(f.batch, o.outbound, o.control) > 0) this.send(f.batch);
      },
      drops: o.outbound.drops,
    });
    this.in = new Lane(shared === undefined ? [flight(undefined, new InboundStage(BATCH_SIZE))]
      : shared.inbound.map((v) => flight(v, new InboundStage(BATCH_SIZE, v.scratch))), {
      what: 'UDP receive',
      stat: UDP_RECEIVED,
      read: (batch) => this.receive(batch),
      pending: () => this.port.pending,
      watch: (on) => this.port.pause(!on),
      prepare: (f) => {
        const rows = f.stage.classify(f.batch, o.inbound, o.control);
        this.countAqmMarks();
        return rows;
      },
      crypt: (f) => f.stage.open(f.batch.data, o.inbound),
      finish: (f) => {
        if (f.stage.accept(f.batch, o.inbound, o.control) > 0) this.write(f.batch);
      },
      drops: o.inbound.drops,
    });
    if (o.pool !== undefined && shared !== undefined) {
      this.jobs = MpmcRing.attach(o.pool.jobs);
      this.done = MpmcRing.attach(o.pool.done);
      void this.serveCompletions();
    }
    this.tunWatcher = new FdWatcher(this.tun.fd, () => this.onReadable(this.out));
    this.tunWatcher.watch(true, false);
  }

  /** This queue's UDP port (the control plane of the inline mode sends through it too). */
  get udp(): UdpPort {
    return this.port;
  }

  /** Moves to another socket (a new listen port); the old one stays open, for its opener to close. */
  useSocket(socket: UdpSocket): void {
    this.port.close();
    this.o.counters.newSocket();
    this.o.outbound.listenPort = socket.port;
    this.port = this.udpPort(socket);
    if (this.in.paused) this.port.pause(true);
  }

  /** Stops watching the TUN queue and the socket; their fds stay open. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.tunWatcher.close();
    this.port.close();
  }

  private udpPort(socket: UdpSocket): UdpPort {
    const o = this.o;
    return new UdpPort({
      socket, settings: o.settings, counters: o.counters, log: o.log, slots: BATCH_SIZE,
      onReadable: () => this.onReadable(this.in), onSourceGone: (addrs, i) => o.control.sourceGone(addrs, i),
    });
  }

  /**
   * Reads one batch and hands it on, then yields to the event loop. libuv polls level-
   * triggered, so a direction that still has packets is called again, after the other
   * direction and the pool's completions had their turn: a reply in the light direction
   * waits behind one batch of a bulk flow, not several (docs/design.md §2).
   * Bounds: every stat index ≤ IN_HAND < values.length (QueueStats' constructor).
   */
  private onReadable<S>(lane: Lane<S>): void {
    if (this.closed) return;
    const f = lane.free.pop();
    if (f === undefined) this.pause(lane, true);
    else this.move(lane, f);
    this.o.afterWork();
  }

  // Bounds: every stat index ≤ IN_HAND < values.length (QueueStats' constructor).
  private move<S>(lane: Lane<S>, f: Flight<S>): void {
    const { d } = lane;
    const n = this.guard(d.what, () => d.read(f.batch));
    if (n === undefined || n === 0) {
      lane.free.push(f);
      return;
    }
    this.stats[d.stat]! += n;
    this.take(f, n);
    this.refresh();
    const rows = d.prepare(f);
    lane.inOrder.push(f);
    if (rows < POOL_MIN_PACKETS || !this.submit(f)) {
      if (rows > 0) d.crypt(f);
      f.state = 'done';
      this.release(lane);
    }
    this.readPending(lane);
  }

  /** Packets cut from a super-packet wait in the port, where the fd's poll cannot see them: reads them on the event loop's next turn. */
  private readPending<S>(lane: Lane<S>): void {
    if (lane.d.pending()) setImmediate(() => this.closed || this.onReadable(lane));
  }

  /**
   * Receives a batch, notes how long it waited in the socket and sets the AQM's signals for it.
   * Bounds: every stat index ≤ IN_HAND < values.length (QueueStats' constructor).
   */
  private receive(batch: PacketBatch): number {
    const n = this.port.receive(batch);
    const inbound = this.o.inbound;
    inbound.aqmSignals = 0;
    const oldest = this.port.sojournOldestMs;
    if (n === 0 || oldest < 0) return n;
    this.stats[SOJOURN_BATCHES]! += 1;
    this.stats[SOJOURN_SUM]! += oldest / 1000;
    if (this.codel !== undefined) {
      const drained = n < batch.slots && !this.port.pending;
      inbound.aqmSignals = this.codel.signals(performance.now(), this.port.sojournNewestMs, n, drained);
    }
    return n;
  }

  /** Bounds: every stat index ≤ IN_HAND < values.length (QueueStats' constructor). */
  private countAqmMarks(): void {
    this.stats[AQM_MARKED]! += this.o.inbound.aqmMarked;
    this.o.inbound.aqmMarked = 0;
  }

  /** Stamps the clock, the routes and the MTU into both stage contexts. */
  private refresh(): void {
    const { outbound, inbound, tables } = this.o;
    const now = tables.now();
    const routes = tables.routes();
    outbound.now = now;
    inbound.now = now;
    outbound.routes = routes;
    inbound.routes = routes;
    outbound.mtu = tables.mtu();
  }

  // Bounds: every stat index ≤ IN_HAND < values.length (QueueStats' constructor).
  private take(f: Flight<unknown>, n: number): void {
    f.count = n;
    this.stats[IN_HAND]! += n;
  }

  /** Hands a prepared flight to the pool; false when there is none (or its ring is full): seal it here. Bounds: every stat index ≤ IN_HAND < values.length (QueueStats' constructor). */
  private submit(f: Flight<unknown>): boolean {
    if (this.jobs === undefined) return false;
    const e = this.job;
    f.use = (f.use + 1) >>> 0;
    e[JOB_FLIGHT] = f.id;
    e[JOB_EPOCH] = this.epoch;
    e[JOB_QUEUE] = this.o.pool!.queue;
    e[JOB_USE] = f.use;
    Atomics.store(this.flightOut!, f.id, 1);
    if (!this.jobs.tryPush(e)) {
      Atomics.store(this.flightOut!, f.id, 0);
      return false;
    }
    f.state = 'busy';
    this.stats[POOL_BATCHES]! += 1;
    return true;
  }

  /**
   * Finishes the flights at the head of the read order that are back (sent, or written to the TUN).
   * Bounds: inOrder.length > 0, the loop's condition.
   */
  private release<S>(lane: Lane<S>): void {
    while (lane.inOrder.length > 0 && !this.closed) {
      const f = lane.inOrder[0]!;
      if (f.state !== 'done' && f.state !== 'lost') break;
      lane.inOrder.shift();
      if (f.state === 'lost') lane.d.drops.add(Drop.WorkerBatchLost, f.count);
      else lane.d.finish(f);
      this.give(lane, f);
    }
    if (lane.paused && lane.free.length > 0) this.pause(lane, false);
  }

  /** A predecessor's flight that came back from the pool joins the free ones. */
  private adopt<S>(lane: Lane<S>, f: Flight<S>): void {
    lane.free.push(f);
    if (lane.paused) this.pause(lane, false);
  }

  // Bounds: every stat index ≤ IN_HAND < values.length (QueueStats' constructor).
  private give<S>(lane: Lane<S>, f: Flight<S>): void {
    this.stats[IN_HAND]! -= f.count;
    f.count = 0;
    f.state = 'free';
    lane.free.push(f);
  }

  // Out of flights, a direction stops watching its fd. Resumed, it reads at once if
  // packets wait in the port (cut from a super-packet) rather than in the kernel.
  private pause<S>(lane: Lane<S>, pause: boolean): void {
    lane.paused = pause;
    lane.d.watch(!pause);
    if (!pause) this.readPending(lane);
  }

  /**
   * Takes the pool's completions as they come (a doorbell on this thread's event loop).
   * Bounds: the completion entry has JOB_WORDS words, past every JOB_* and DONE_* field.
   */
  private async serveCompletions(): Promise<void> {
    const done = this.done!;
    const e = this.completion;
    while (!this.closed) {
      let any = false;
      while (done.tryPop(e)) {
        any = true;
        this.complete(e[JOB_FLIGHT]!, e[JOB_EPOCH]!, e[DONE_LOST] === 1, e[JOB_USE]!);
      }
      if (any) {
        this.release(this.out);
        this.release(this.in);
        this.o.afterWork();
      }
      await done.waitNotEmptyAsync(1000);
    }
  }

  private complete(id: number, epoch: number, lost: boolean, use: number): void {
    const f = this.byId.get(id);
    if (f === undefined) return;
    if (epoch !== this.epoch) {
      // Back from a dead predecessor: now it may be used again.
      if (f.state !== 'orphan') return;
      Atomics.store(this.flightOut!, id, 0);
      f.state = 'free';
      if (f.inbound) this.adopt(this.in, f as Flight<InboundStage>);
      else this.adopt(this.out, f as Flight<OutboundStage>);
      return;
    }
    if (f.state !== 'busy' || f.use !== use) return; // a duplicate of a completion already taken
    Atomics.store(this.flightOut!, id, 0);
    f.state = lost ? 'lost' : 'done';
  }

  /** Sends the batch's datagrams through this queue's socket; failures are counted. Bounds: every stat index ≤ IN_HAND < values.length (QueueStats' constructor). */
  send(batch: PacketBatch): void {
    this.stats[UDP_SENT]! += sendCounted(this.port, batch, this.o.outbound.drops, this.o.log);
  }

  // Bounds: every stat index ≤ IN_HAND < values.length (QueueStats' constructor).
  private write(batch: PacketBatch): void {
    const count = batch.count;
    const failed = this.guard('TUN write', () => this.tun.write(batch, COALESCE_CAPACITY)) ?? count;
    this.stats[TUN_WRITTEN]! += count - failed;
    if (failed > 0) this.o.inbound.drops.add(Drop.TunWriteFailed, failed);
  }

  /** Writes the ICMP errors the outbound stage owes the host (if any) to the TUN queue, in one batch. Bounds: every stat index ≤ IN_HAND < values.length (QueueStats' constructor). */
  private writeUnreachable(): void {
    const u = this.unreachable;
    if (u.limited > 0) {
      this.stats[ICMP_LIMITED]! += u.limited;
      u.limited = 0;
    }
    const count = u.batch.count;
    if (count === 0) return;
    const failed = this.guard('TUN write', () => this.tun.write(u.batch, u.capacity)) ?? count;
    u.clear();
    this.stats[ICMP_SENT]! += count - failed;
    if (failed > 0) this.o.outbound.drops.add(Drop.TunWriteFailed, failed);
  }

  /** Runs an I/O call; an error there (the device went away) is logged, not thrown into libuv. */
  private guard<T>(what: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EBADFD') {
        // The interface was deleted (`ip link del`, wg-quick down): a normal way to stop,
        // which the main thread's link check turns into a shutdown. Stop reading the dead queue.
        if (!this.tunGone) this.o.log.verbose(`${what}: the interface is gone (EBADFD)`);
        this.tunGone = true;
        this.tunWatcher.close();
      } else {
        this.o.log.error(`${what}: ${(err as Error).message}`);
      }
      return undefined;
    }
  }
}

/**
 * Sends the batch's datagrams through `port`; what is not sent is counted as
 * send_failed, and a failing call is logged, not thrown. Returns how many were sent.
 */
export function sendCounted(port: UdpPort, batch: PacketBatch, drops: DropCounters, log: Logger): number {
  let failed: number;
  try {
    failed = port.send(batch);
  } catch (err) {
    log.error(`UDP send: ${(err as Error).message}`);
    failed = batch.count;
  }
  if (failed > 0) drops.add(Drop.SendFailed, failed);
  return batch.count - failed;
}
