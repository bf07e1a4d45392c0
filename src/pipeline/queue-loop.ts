// The data path of one queue: a TUN queue and a UDP socket tied together by the
// outbound and inbound stages, on the event loop of the thread that runs it (the
// main thread in the inline mode, a queue worker otherwise). libuv tells us when
// the TUN or the socket is readable, and each wakeup moves whole batches
// (design.md §2). One thread per queue keeps each reader's batches in order: a
// flow read from TUN queue k is sealed and sent by queue k's thread, and what
// socket k receives is opened, checked and written to TUN queue k — the queue the
// kernel then reads that flow's replies from.
import { Drop } from '../protocol/drop-reasons.js';
import { MESSAGE_TRANSPORT_HEADER_SIZE } from '../protocol/constants.js';
import type { UdpSocket } from '../io/udp.js';
import { FdWatcher } from '../io/watch.js';
import type { Logger } from '../log.js';
import type { OffloadCounters } from '../offload/counters.js';
import type { OffloadSettings } from '../offload/settings.js';
import { InboundStage, type InboundContext, type InboundControl } from '../stages/inbound.js';
import { OutboundStage, type OutboundContext, type OutboundControl } from '../stages/outbound.js';
import { TunPort, type TunQueue } from '../device/tun-port.js';
import { UdpPort } from '../device/udp-port.js';
import { PacketBatch, SLOT_SIZE } from './batch.js';

/** Packets per batch: wireguard-go's IdealBatchSize. */
export const BATCH_SIZE = 128;
/** Batches one wakeup may move before yielding to the event loop (libuv polls level-triggered). */
const BATCHES_PER_WAKEUP = 8;
/** Inbound packets start after the transport header in their slot and may grow to its end when coalesced. */
const COALESCE_CAPACITY = SLOT_SIZE - MESSAGE_TRANSPORT_HEADER_SIZE;

/** A queue's counters, in shared memory so the main thread reads them (also after its worker died). */
export const QUEUE_STAT_NAMES = ['tun_read_packets', 'udp_sent_datagrams', 'udp_received_datagrams', 'tun_written_packets'] as const;
const TUN_READ = 0;
const UDP_SENT = 1;
const UDP_RECEIVED = 2;
const TUN_WRITTEN = 3;
/** Packets of the batch in hand (read, not yet sent or written): what is lost if the thread dies now. */
const IN_HAND = QUEUE_STAT_NAMES.length;

export class QueueStats {
  readonly values: Float64Array;

  constructor(buffer?: SharedArrayBuffer) {
    this.values = new Float64Array(buffer ?? new SharedArrayBuffer(8 * (IN_HAND + 1)));
  }

  share(): SharedArrayBuffer {
    return this.values.buffer as SharedArrayBuffer;
  }

  /** Packets the thread had in hand; the caller counts them as lost when the thread died. */
  takeInHand(): number {
    const n = this.values[IN_HAND]!;
    this.values[IN_HAND] = 0;
    return n;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(QUEUE_STAT_NAMES.map((name, i) => [name, this.values[i]!]));
  }
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
  control: OutboundControl & InboundControl;
  /** Brings the contexts up to date before a batch (clock, routes, MTU). */
  refresh(): void;
  /** After each wakeup's batches: hand what the control plane needs on. */
  afterWork(): void;
}

export class QueueLoop {
  readonly tun: TunPort;
  private port: UdpPort;
  private readonly outBatch = new PacketBatch(BATCH_SIZE, SLOT_SIZE);
  private readonly inBatch = new PacketBatch(BATCH_SIZE, SLOT_SIZE);
  private readonly outbound = new OutboundStage(BATCH_SIZE);
  private readonly inbound = new InboundStage(BATCH_SIZE);
  private readonly stats: Float64Array;
  private readonly tunWatcher: FdWatcher;
  private closed = false;

  constructor(private readonly o: QueueLoopOptions) {
    this.stats = o.stats.values;
    this.tun = new TunPort(o.tun, o.counters, o.log, BATCH_SIZE);
    this.port = this.udpPort(o.udp);
    this.tunWatcher = new FdWatcher(this.tun.fd, () => this.onTunReadable());
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
    this.port = this.udpPort(socket);
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
    return new UdpPort({ socket, settings: o.settings, counters: o.counters, log: o.log, slots: BATCH_SIZE, onReadable: () => this.onUdpReadable() });
  }

  private onTunReadable(): void {
    const batch = this.outBatch;
    const { stats } = this;
    let round = 0;
    for (; round < BATCHES_PER_WAKEUP && !this.closed; round++) {
      const n = this.guard('TUN read', () => this.tun.read(batch));
      if (n === undefined) break;
      if (n > 0) {
        stats[TUN_READ]! += n;
        stats[IN_HAND] = n;
        this.o.refresh();
        if (this.outbound.run(batch, this.o.outbound, this.o.control) > 0) this.send(batch);
        stats[IN_HAND] = 0;
      }
      // Segments of a super-packet that did not fit wait in the port, not in the kernel: no wakeup for them.
      if (n < BATCH_SIZE && !this.tun.pending) break;
    }
    if (round === BATCHES_PER_WAKEUP && this.tun.pending) setImmediate(() => this.closed || this.onTunReadable());
    this.o.afterWork();
  }

  private onUdpReadable(): void {
    const batch = this.inBatch;
    const { stats } = this;
    let round = 0;
    for (; round < BATCHES_PER_WAKEUP && !this.closed; round++) {
      const udp = this.port;
      const n = this.guard('UDP receive', () => udp.receive(batch));
      if (n === undefined) break;
      if (n > 0) {
        stats[UDP_RECEIVED]! += n;
        stats[IN_HAND] = n;
        this.o.refresh();
        if (this.inbound.run(batch, this.o.inbound, this.o.control) > 0) this.write(batch);
        stats[IN_HAND] = 0;
      }
      if (n < BATCH_SIZE && !udp.pending) break;
    }
    if (round === BATCHES_PER_WAKEUP && this.port.pending) setImmediate(() => this.closed || this.onUdpReadable());
    this.o.afterWork();
  }

  /** Sends the batch's datagrams through this queue's socket; failures are counted. */
  send(batch: PacketBatch): void {
    const failed = this.guard('UDP send', () => this.port.send(batch)) ?? batch.count;
    this.stats[UDP_SENT]! += batch.count - failed;
    if (failed > 0) this.o.outbound.drops.add(Drop.SendFailed, failed);
  }

  private write(batch: PacketBatch): void {
    const count = batch.count;
    const failed = this.guard('TUN write', () => this.tun.write(batch, COALESCE_CAPACITY)) ?? count;
    this.stats[TUN_WRITTEN]! += count - failed;
    if (failed > 0) this.o.inbound.drops.add(Drop.TunWriteFailed, failed);
  }

  /** Runs an I/O call; an error there (the device went away) is logged, not thrown into libuv. */
  private guard<T>(what: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.o.log.error(`${what}: ${(err as Error).message}`);
      return undefined;
    }
  }
}
