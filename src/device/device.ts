// One WireGuard interface: the protocol engine and its data path. The data path
// is one queue per worker thread (src/dataplane/: a TUN queue and a UDP socket of an
// SO_REUSEPORT group each, src/dataplane/queue-loop.ts on the worker's event loop),
// or in the inline mode (queues 0) one queue on this thread. This thread keeps the
// control plane: handshakes, timers (timers.ts) and the UAPI server's get()/set()
// (uapi.ts), and it sends what the engine queues (handshakes, keepalives, staged
// data: outbox.ts) through the first socket. counters.ts reads what everything counts;
// link.ts follows the interface wherever it is moved.
import { Engine } from '../protocol/engine.js';
import { BATCH_SIZE } from '../pipeline/batch.js';
import { QueueLoop } from '../dataplane/queue-loop.js';
import { aeadBackend, type CryptoBackendName } from '../crypto/backends.js';
import { UserStages, type StageSnapshot, type StageSpec } from '../stages/user-host.js';
import { EngineControl, inboundContextOf, outboundContextOf } from '../stages/engine-control.js';
import { closeFd, socketBufferSizes } from '../io/fd.js';
import type { DeviceMetrics } from '../metrics/metrics.js';
import { linkMtu, setLinkMtu } from '../tun/tun.js';
import type { UdpSocket } from '../conn/udp.js';
import type { Logger } from '../log.js';
import { ALL_OFFLOADS, type OffloadSettings } from '../offload/settings.js';
import { DEFAULT_AQM, type AqmSettings } from '../dataplane/codel.js';
import { setThreadNice, usableNice } from '../dataplane/priority.js';
import type { RouteTable } from '../routing/route-table.js';
import { QueueWorkers } from '../dataplane/queue-workers.js';
import { describeTunOffloads, openTunDevice, type TunQueue } from '../tun/tun-port.js';
import type { OffloadOn } from '../tun/tun-offloads.js';
import { SourceCheck } from './source-check.js';
import { HandshakeScheduler } from './handshake-scheduler.js';
import { DeviceCounters, type DeviceStats } from './counters.js';
import { InterfaceLink } from './link.js';
import { Outbox } from './outbox.js';
import { DeviceTimer } from './timers.js';
import { applyKeyAndPeers, interfaceState, openListenSockets, setFwmark } from './uapi.js';
import { createHandshakeLanes, HandshakeGate, LaneReader, LaneWriter } from '../dataplane/handshake-lanes.js';
import { openUdpSockets, UdpPort } from '../conn/udp-port.js';
import type { SetRequest, UapiDevice, UapiInterfaceState } from '../uapi/protocol.js';

export type { DeviceStats };

export interface DeviceOptions {
  name: string;
  mtu?: number;
  logger: Logger;
  /** The offloads tundra may use (default: all the kernel has). */
  offload?: OffloadSettings;
  /** The transport AEAD, of the data path and of the engine's own sends (default native). */
  crypto?: CryptoBackendName;
  /** User stages to run on every batch (loaded on each thread that runs a queue). */
  stages?: readonly StageSpec[];
  /** Queue workers (a TUN queue and a UDP socket each); 0 runs the data path on this thread. Default 1. */
  queues?: number;
  /** Crypto pool workers sealing and opening for the queue workers; 0 (the default): each queue worker does its own. */
  workers?: number;
  /** A testing knob: seconds after which the initiator rekeys (default REKEY_AFTER_TIME, 120 s). */
  rekeyAfterSeconds?: number | undefined;
  /** The receive queue's AQM (default DEFAULT_AQM; targetMs 0: off). */
  aqm?: AqmSettings;
  /** The data path threads' nice value (default: the process's; kept as it is where not allowed). */
  nice?: number | undefined;
}

export class Device implements UapiDevice {
  readonly engine: Engine;
  readonly name: string;
  private readonly log: Logger;
  private readonly offload: OffloadSettings;
  private readonly aqm: AqmSettings;
  private readonly nice: number | undefined;
  private readonly crypto: CryptoBackendName;
  private readonly stageSpecs: readonly StageSpec[];
  private readonly counters: DeviceCounters;
  private readonly control: EngineControl;
  /** Handshake messages from every queue, taken a slice at a time. */
  private readonly handshakes: HandshakeScheduler;
  private readonly timer: DeviceTimer;
  private readonly outbox: Outbox;
  private readonly tun: readonly TunQueue[];
  private readonly link: InterfaceLink;
  private udp: readonly UdpSocket[] = [];
  /** Where the control plane sends from: the inline queue's port, or a send-only port on the first socket. */
  private sender!: UdpPort;
  /** The inline mode's queue and the user stages it runs (kept across a listen-port change). */
  private inline: QueueLoop | undefined;
  private inlineStages: UserStages | undefined;
  private readonly workers: QueueWorkers | undefined;
  private publishedRoutes: RouteTable | undefined;
  private fwmark = 0;
  /** Whether each peer's sticky source still suits the routes (undefined where rtnetlink is refused). */
  private sourceCheck: SourceCheck | undefined;
  private closed = false;

  /** Opens the TUN and the listen port and starts the data path; rejects if a stage does not load. */
  static async start(options: DeviceOptions): Promise<Device> {
    const device = new Device(options);
    try {
      if (device.workers === undefined && device.stageSpecs.length > 0) {
        device.inlineStages = await UserStages.load(device.stageSpecs, 'main', (line) => device.log.error(line));
      }
      await device.startQueues(openUdpSockets(0, 0, device.offload, device.tun.length));
    } catch (err) {
      await device.close();
      throw err;
    }
    device.logOffloads();
    device.startSourceCheck();
    return device;
  }

  private constructor(options: DeviceOptions) {
    this.name = options.name;
    this.log = options.logger;
    this.offload = options.offload ?? ALL_OFFLOADS;
    this.aqm = options.aqm ?? DEFAULT_AQM;
    this.nice = options.nice === undefined ? undefined : usableNice(options.nice, this.log);
    this.crypto = options.crypto ?? 'native';
    this.stageSpecs = options.stages ?? [];
    const queues = options.queues ?? 1;
    if (!Number.isInteger(queues) || queues < 0) throw new RangeError(`queues must be an integer >= 0, not ${queues}`);
    const mtu = options.mtu ?? 1420;
    const rekeyAfterTime = options.rekeyAfterSeconds === undefined ? undefined : options.rekeyAfterSeconds * 1000;
    this.engine = new Engine({
      mtu, rekeyAfterTime, seal: aeadBackend(this.crypto).seal, onEndpointChange: (peer) => this.sourceCheck?.endpointChanged(peer),
    });
    this.timer = new DeviceTimer(this.engine, () => this.afterWork());
    this.outbox = new Outbox(this.engine, this.log);
    const gate = new HandshakeGate();
    this.handshakes = new HandshakeScheduler(this.engine, gate, () => this.afterWork());
    // The inline queue's handshake lanes (queue workers have their own, in their control channels).
    const inlineLanes = queues === 0 ? createHandshakeLanes(gate) : undefined;
    if (inlineLanes !== undefined) this.handshakes.add(new LaneReader(inlineLanes));
    this.control = new EngineControl(this.engine, inlineLanes === undefined ? undefined : new LaneWriter(inlineLanes, this.engine.drops, this.engine.now));
    this.tun = openTunDevice(options.name, this.offload, Math.max(1, queues));
    this.link = new InterfaceLink(this.firstTun.fd, options.name, this.log);
    try {
      // Not when it is already so: a persistent TUN made beforehand can then be run without CAP_NET_ADMIN.
      if (linkMtu(options.name) !== mtu) setLinkMtu(options.name, mtu);
    } catch (err) {
      for (const q of this.tun) closeFd(q.fd);
      throw err;
    }
    if (queues > 0) {
      this.workers = new QueueWorkers({
        name: options.name, log: this.log, tun: this.tun, settings: this.offload, aqm: this.aqm, nice: this.nice, keys: this.engine.keyTable,
        peers: this.engine.peerTable.share(), crypto: this.crypto, stages: this.stageSpecs, workers: options.workers ?? 0, control: this.control,
        handshakes: { add: (reader) => this.handshakes.add(reader), gate },
        drops: this.engine.drops, afterWork: () => this.afterWork(),
      }, this.engine.routeTable().words.buffer as SharedArrayBuffer, mtu);
    }
    this.counters = new DeviceCounters(this.engine, this.workers, () => this.inlineStages);
  }

  /** The user stages' counters summed over every thread's instances. */
  stageSnapshot(): StageSnapshot {
    return this.counters.stages();
  }

  /** Per queue: packets through it, and (pipeline) how often its worker was started again. */
  queueSnapshot(): Record<string, number>[] {
    return this.counters.queues();
  }

  /** The crypto pool's size, restarts and lost batches, if there is one. */
  poolSnapshot(): Record<string, number> | undefined {
    return this.counters.pool();
  }

  /** The counters of `tundra stats` and `kill -USR1`: drops, offloads, user stages, queues, the pool. */
  stats(): DeviceStats {
    return this.counters.stats(this.name);
  }

  /** Everything the metrics report, read now (one scrape). */
  metrics(): DeviceMetrics {
    const [receive, send] = socketBufferSizes(this.firstSocket.fd);
    return this.counters.metrics({ offloadsOn: this.offloadsOn(), socketBuffers: { receive, send }, tunTxDropped: this.link.txDropped() });
  }

  /** The link's MTU changed (wg-quick sets it after start). */
  setMtu(mtu: number): void {
    if (mtu === this.engine.mtu) return;
    this.log.verbose(`MTU updated: ${mtu}`);
    this.engine.mtu = mtu;
    this.workers?.setMtu(mtu);
  }

  /**
   * Looks at the interface through the TUN fd, wherever it lives (link.ts). Returns its
   * MTU (0 when it cannot be read this time), or undefined once the interface was deleted.
   */
  pollLink(): number | undefined {
    return this.link.poll();
  }

  // Bounds: tun holds max(1, queues) queues (constructor; openTunQueues checks its count ≥ 1).
  private get firstTun(): TunQueue {
    return this.tun[0]!;
  }

  // Bounds: from start() on, udp holds one socket per TUN queue, ≥ 1 (openUdpGroup checks its count ≥ 1); nothing reads it before.
  private get firstSocket(): UdpSocket {
    return this.udp[0]!;
  }

  /** The offloads on: the first TUN queue's and the control plane's socket's. */
  private offloadsOn(): OffloadOn[] {
    return [...describeTunOffloads(this.firstTun.offloads), ...this.sender.describe().on];
  }

  /** One line: which offloads are on, and why any is off. */
  private logOffloads(): void {
    const notes = [...this.firstTun.offloads.notes, ...this.sender.describe().notes];
    const on = this.offloadsOn().map((o) => (o.detail === '' ? o.name : `${o.name} (${o.detail})`));
    const pool = this.workers?.poolSnapshot();
    const queues = this.workers === undefined ? 'inline (this thread)'
      : `${this.workers.count} queue worker${this.workers.count === 1 ? '' : 's'}${pool === undefined ? '' : `, ${pool.workers} crypto workers`}`;
    this.log.verbose(`Data path: ${queues}; offloads on: ${on.length > 0 ? on.join(', ') : 'none'}${notes.map((n) => `; ${n}`).join('')}`);
  }

  private startSourceCheck(): void {
    try {
      this.sourceCheck = new SourceCheck({ engine: this.engine, fwmark: () => this.fwmark, log: this.log });
    } catch (err) {
      this.log.error(`Sticky source addresses will not follow route changes: ${(err as Error).message}`);
    }
  }

  /** Stops the data path, closes the TUN and the sockets and removes the peers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer.close();
    this.sourceCheck?.close();
    this.sourceCheck = undefined;
    await this.stopQueues();
    await this.workers?.close();
    this.handshakes.close();
    this.inlineStages?.close();
    for (const s of this.udp) closeFd(s.fd);
    for (const q of this.tun) closeFd(q.fd);
    for (const peer of [...this.engine.peers]) this.engine.removePeer(peer);
  }

  // ---- data path -----------------------------------------------------------

  /** Starts the queues on `udp` (one socket per queue), which the device owns from now on. */
  private async startQueues(udp: readonly UdpSocket[]): Promise<void> {
    this.udp = udp;
    if (this.workers !== undefined) {
      this.sender = this.controlSender(this.firstSocket);
      await this.workers.start(udp);
      return;
    }
    const engine = this.engine;
    const stages = this.inlineStages;
    const aead = aeadBackend(this.crypto);
    const loop = new QueueLoop({
      tun: this.firstTun, udp: this.firstSocket, settings: this.offload, aqm: this.aqm, counters: this.counters.offload, stats: this.counters.inline, log: this.log,
      outbound: outboundContextOf(engine, aead.seal, stages), inbound: inboundContextOf(engine, aead.open, stages), control: this.control,
      tables: { now: engine.now, routes: () => engine.routeTable(), mtu: () => engine.mtu },
      afterWork: () => this.afterWork(),
    });
    this.inline = loop;
    setThreadNice(this.nice);
    this.sender = loop.udp;
  }

  /** The control plane's send-only port, when the queues are workers'. */
  private controlSender(socket: UdpSocket): UdpPort {
    return new UdpPort({
      socket, settings: this.offload, counters: this.counters.offload, log: this.log, slots: BATCH_SIZE,
      onSourceGone: (addrs, i) => this.control.sourceGone(addrs, i),
    });
  }

  /** Moves the data path to the sockets `next` (a new listen port), then closes the old ones. */
  private async useSockets(next: UdpSocket[]): Promise<void> {
    const old = this.udp;
    this.udp = next;
    if (this.workers !== undefined) {
      this.sender = this.controlSender(this.firstSocket);
      await this.workers.useSockets(next);
    } else {
      this.inline!.useSocket(this.firstSocket);
      this.sender = this.inline!.udp;
    }
    for (const s of old) closeFd(s.fd);
  }

  private async stopQueues(): Promise<void> {
    this.sender?.close();
    await this.workers?.stop();
    this.inline?.close();
    this.inline = undefined;
  }

  /** Sends what the engine queued (handshakes, keepalives, staged data), hands route changes on, re-arms the timer. */
  private afterWork(): void {
    if (this.closed) return;
    this.outbox.flush(this.sender);
    this.publishRoutes();
    this.timer.arm();
  }

  /** The queue workers get the compiled routes after each change of the allowed IPs. */
  private publishRoutes(): void {
    if (this.workers === undefined) return;
    const routes = this.engine.routeTable();
    if (routes === this.publishedRoutes) return;
    this.publishedRoutes = routes;
    this.workers.setRoutes(routes.words.buffer as SharedArrayBuffer);
  }

  // ---- UAPI (uapi.ts) ------------------------------------------------------

  get(): UapiInterfaceState {
    return interfaceState(this.engine, this.firstSocket.port, this.fwmark);
  }

  async set(request: SetRequest): Promise<void> {
    // The steps that can fail (port in use, SO_MARK without CAP_NET_ADMIN) come first and
    // undo themselves, so a failed request changes nothing and is answered with its errno.
    // A new port's sockets are opened and marked before the data path moves to them.
    const fwmark = request.fwmark ?? this.fwmark;
    if (request.listenPort !== undefined && request.listenPort !== this.firstSocket.port) {
      await this.useSockets(openListenSockets(request.listenPort, fwmark, this.offload, this.udp.length));
    } else if (fwmark !== this.fwmark) {
      setFwmark(this.udp, fwmark, this.fwmark);
    }
    if (fwmark !== this.fwmark) this.sourceCheck?.checkEveryPeer();
    this.fwmark = fwmark;
    applyKeyAndPeers(this.engine, request);
    this.afterWork();
  }
}
