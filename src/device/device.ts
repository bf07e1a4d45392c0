// One WireGuard interface: the protocol engine and its data path. The data path
// is one queue per worker thread (src/dataplane/: a TUN queue and a UDP socket of an
// SO_REUSEPORT group each, src/dataplane/queue-loop.ts on the worker's event loop),
// or in the inline mode (queues 0) one queue on this thread. This thread keeps the
// control plane: handshakes, timers and the UAPI server's get()/set(), and it sends
// what the engine queues (handshakes, keepalives, staged data) through the first
// socket.
import { Engine } from '../protocol/engine.js';
import { DropCounters, Drop } from '../protocol/drop-reasons.js';
import { BATCH_SIZE, PacketBatch, SLOT_SIZE } from '../pipeline/batch.js';
import { errnoOf, PeerTableFullError, UapiError } from '../errors.js';
import { QueueLoop, QueueStats } from '../dataplane/queue-loop.js';
import { aeadBackend, type CryptoBackendName } from '../crypto/backends.js';
import { UserStages, type StageSnapshot, type StageSpec } from '../stages/user-host.js';
import { EngineControl, inboundContextOf, outboundContextOf } from '../stages/engine-control.js';
import { readFileSync } from 'node:fs';
import { isZeroKey } from '../crypto/keys.js';
import { closeFd, socketBufferSizes } from '../io/fd.js';
import type { DeviceMetrics } from '../metrics/metrics.js';
import { linkMtu, setLinkMtu, tunLink, tunName, type TunLink } from '../tun/tun.js';
import { udpSetFwmark, type UdpSocket } from '../conn/udp.js';
import { writeAddr } from '../pipeline/address.js';
import type { Logger } from '../log.js';
import { OffloadCounters } from '../offload/counters.js';
import { ALL_OFFLOADS, type OffloadSettings } from '../offload/settings.js';
import type { RouteTable } from '../routing/route-table.js';
import { QueueWorkers } from '../dataplane/queue-workers.js';
import { describeTunOffloads, openTunDevice, type TunQueue } from '../tun/tun-port.js';
import { SourceCheck } from './source-check.js';
import { HandshakeScheduler } from './handshake-scheduler.js';
import { createHandshakeLanes, HandshakeGate, LaneReader, LaneWriter } from '../dataplane/handshake-lanes.js';
import { openUdpSockets, UdpPort } from '../conn/udp-port.js';
import { constants } from 'node:os';
import { type SetRequest, type UapiDevice, type UapiInterfaceState, type UapiPeerState } from '../uapi/protocol.js';

const { EADDRINUSE, ENOSPC } = constants.errno;

/** Peers whose due timers one turn of the event loop runs (an initiation each, at most: ~0.1 ms). */
const TIMER_SLICE = 64;
/**
 * The timer wakes at the end of the TIMER_SLOT_MS slot its deadline falls in, so peers
 * due in one slot share one wakeup and one sendmmsg: 2,000 retrying peers are 400
 * initiations a second. WireGuard's timers are seconds long; the kernel's timer wheel
 * fires them later than this (up to 1/8 of their length).
 */
const TIMER_SLOT_MS = 50;

export interface DeviceOptions {
  name: string;
  mtu?: number;
  logger: Logger;
  /** The offloads tundra may use (default: all the kernel has). */
  offload?: OffloadSettings;
  /** The AEAD of the data path (default native). */
  crypto?: CryptoBackendName;
  /** User stages to run on every batch (loaded on each thread that runs a queue). */
  stages?: readonly StageSpec[];
  /** Queue workers (a TUN queue and a UDP socket each); 0 runs the data path on this thread. Default 1. */
  queues?: number;
  /** Crypto pool workers sealing and opening for the queue workers; 0 (the default): each queue worker does its own. */
  workers?: number;
  /** A testing knob: seconds after which the initiator rekeys (default REKEY_AFTER_TIME, 120 s). */
  rekeyAfterSeconds?: number | undefined;
}

/** What `tundra stats` shows. */
export interface DeviceStats {
  interface: string;
  drops: Record<string, number>;
  offload: Record<string, number | Record<string, number>>;
  stages: Record<string, number>;
  queues: Record<string, number>[];
  pool?: Record<string, number>;
}

export class Device implements UapiDevice {
  readonly engine: Engine;
  readonly name: string;
  private readonly log: Logger;
  private readonly offload: OffloadSettings;
  private readonly crypto: CryptoBackendName;
  private readonly stageSpecs: readonly StageSpec[];
  /** This thread's offload counters (the inline queue's, or the control plane's sends). */
  private readonly offloadCounters = new OffloadCounters();
  private readonly inlineStats = new QueueStats();
  private readonly control: EngineControl;
  /** Handshake messages from every queue, taken a slice at a time. */
  private readonly handshakes: HandshakeScheduler;
  private readonly tun: readonly TunQueue[];
  private udp: readonly UdpSocket[] = [];
  /** Where the control plane sends from: the inline queue's port, or a send-only port on the first socket. */
  private sender!: UdpPort;
  /** The inline mode's queue and the user stages it runs (kept across a listen-port change). */
  private inline: QueueLoop | undefined;
  private inlineStages: UserStages | undefined;
  private readonly workers: QueueWorkers | undefined;
  private readonly controlBatch = new PacketBatch(BATCH_SIZE, SLOT_SIZE);
  private publishedRoutes: RouteTable | undefined;
  private fwmark = 0;
  /** Whether each peer's sticky source still suits the routes (undefined where rtnetlink is refused). */
  private sourceCheck: SourceCheck | undefined;
  /** The interface as the last pollLink saw it: it may have been renamed, or moved to another network namespace. */
  private link: { name: string; callerNetns: boolean };
  /** Whether pollLink said once that it cannot look into the interface's namespace. */
  private linkFallbackSaid = false;
  private timer: NodeJS.Timeout | undefined;
  private timerDeadline = Infinity;
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
    this.link = { name: options.name, callerNetns: true };
    this.log = options.logger;
    this.offload = options.offload ?? ALL_OFFLOADS;
    this.crypto = options.crypto ?? 'native';
    this.stageSpecs = options.stages ?? [];
    const queues = options.queues ?? 1;
    if (!Number.isInteger(queues) || queues < 0) throw new RangeError(`queues must be an integer >= 0, not ${queues}`);
    const mtu = options.mtu ?? 1420;
    const rekeyAfterTime = options.rekeyAfterSeconds === undefined ? undefined : options.rekeyAfterSeconds * 1000;
    this.engine = new Engine({ mtu, rekeyAfterTime, onEndpointChange: (peer) => this.sourceCheck?.endpointChanged(peer) });
    const gate = new HandshakeGate();
    this.handshakes = new HandshakeScheduler(this.engine, gate, () => this.afterWork());
    // The inline queue's handshake lanes (queue workers have their own, in their control channels).
    const inlineLanes = queues === 0 ? createHandshakeLanes(gate) : undefined;
    if (inlineLanes !== undefined) this.handshakes.add(new LaneReader(inlineLanes));
    this.control = new EngineControl(this.engine, inlineLanes === undefined ? undefined : new LaneWriter(inlineLanes, this.engine.drops, this.engine.now));
    this.tun = openTunDevice(options.name, this.offload, Math.max(1, queues));
    try {
      // Not when it is already so: a persistent TUN made beforehand can then be run without CAP_NET_ADMIN.
      if (linkMtu(options.name) !== mtu) setLinkMtu(options.name, mtu);
    } catch (err) {
      for (const q of this.tun) closeFd(q.fd);
      throw err;
    }
    if (queues > 0) {
      this.workers = new QueueWorkers({
        name: options.name, log: this.log, tun: this.tun, settings: this.offload, keys: this.engine.keyTable,
        peers: this.engine.peerTable.share(), crypto: this.crypto, stages: this.stageSpecs, workers: options.workers ?? 0, control: this.control,
        handshakes: { add: (reader) => this.handshakes.add(reader), gate },
        drops: this.engine.drops, afterWork: () => this.afterWork(),
      }, this.engine.routeTable().words.buffer as SharedArrayBuffer, mtu);
    }
  }

  /** Every drop so far, by reason: the engine's, every queue's, the offload paths' (summed by the caller) and the user stages'. */
  private dropSnapshot(offloadDrops: Record<string, number>): Record<string, number> {
    const drops = [this.engine.drops, ...(this.workers?.drops ?? [])];
    return { ...DropCounters.sum(drops), ...offloadDrops, ...this.stageSnapshot().drops };
  }

  /** The user stages' counters summed over every thread's instances. */
  stageSnapshot(): StageSnapshot {
    if (this.workers !== undefined) return UserStages.snapshotOf(this.workers.stageCounters);
    return this.inlineStages?.snapshot() ?? { drops: {}, counters: {} };
  }

  /** Per queue: packets through it, and (pipeline) how often its worker was started again. */
  queueSnapshot(): Record<string, number>[] {
    return this.workers?.snapshot() ?? [this.inlineStats.snapshot()];
  }

  /** The crypto pool's size, restarts and lost batches, if there is one. */
  poolSnapshot(): Record<string, number> | undefined {
    return this.workers?.poolSnapshot();
  }

  /** The counters of `tundra stats` and `kill -USR1`: drops, offloads, user stages, queues, the pool. */
  stats(): DeviceStats {
    const pool = this.poolSnapshot();
    const offload = OffloadCounters.sum(this.allOffloadCounters());
    return {
      interface: this.name, drops: this.dropSnapshot(offload.drops), offload: offload.counters,
      stages: this.stageSnapshot().counters, queues: this.queueSnapshot(), ...(pool === undefined ? {} : { pool }),
    };
  }

  /** Everything the metrics report, read now (one scrape). */
  metrics(): DeviceMetrics {
    const engine = this.engine;
    const offload = OffloadCounters.sum(this.allOffloadCounters());
    const [receive, send] = socketBufferSizes(this.udp[0]!.fd);
    const on = new Set([...describeTunOffloads(this.tun[0]!.offloads).map((name) => name.split(' ')[0]!), ...this.sender.describe().on]);
    return {
      peers: [...engine.peers].map((peer) => {
        const { current, previous, next } = peer.keypairs;
        return {
          publicKey: peer.publicKey, rxBytes: peer.rxBytes, txBytes: peer.txBytes, rxPackets: peer.rxPackets, txPackets: peer.txPackets,
          lastHandshakeWallMs: peer.lastHandshakeWallMs,
          keypairs: [current, previous, next].filter((k) => k !== undefined).length,
        };
      }),
      removedRxBytes: engine.removedRxBytes,
      removedTxBytes: engine.removedTxBytes,
      removedRxPackets: engine.removedRxPackets,
      removedTxPackets: engine.removedTxPackets,
      drops: this.dropSnapshot(offload.drops),
      offload: offload.counters,
      histograms: offload.histograms,
      queues: this.queueSnapshot(),
      pool: this.poolSnapshot(),
      handshakes: engine.handshakes,
      offloads: Object.fromEntries(['tun-tso4', 'tun-tso6', 'tun-uso', 'tun-gro-tcp', 'tun-gro-udp', 'udp-gso', 'udp-gro'].map((name) => [name, on.has(name)])),
      socketBuffers: { receive, send },
      tunTxDropped: this.tunTxDropped(),
    };
  }

  /** The interface's tx_dropped counter, wherever it lives; undefined when it cannot be read. */
  private tunTxDropped(): number | undefined {
    try {
      return tunLink(this.tun[0]!.fd).txDropped;
    } catch {
      // /sys/class/net shows this namespace's interfaces only.
      return this.link.callerNetns ? readInterfaceStatistic(this.link.name, 'tx_dropped') : undefined;
    }
  }

  /** The link's MTU changed (wg-quick sets it after start). */
  setMtu(mtu: number): void {
    if (mtu === this.engine.mtu) return;
    this.log.verbose(`MTU updated: ${mtu}`);
    this.engine.mtu = mtu;
    this.workers?.setMtu(mtu);
  }

  /**
   * Looks at the interface through the TUN fd, wherever it lives: it may have been
   * moved to another network namespace (`ip link set IF netns NS`, the UDP sockets stay
   * here) and back, or renamed, and still carries the traffic. Returns its MTU (0 when
   * it cannot be read this time), or undefined once the interface was deleted, in
   * whatever namespace or with its namespace. Without the means to look into its
   * namespace (Linux < 5.2, no CAP_NET_ADMIN) it still notices the deletion, and reads
   * the MTU of the interface of that name here.
   */
  pollLink(): number | undefined {
    const fd = this.tun[0]!.fd;
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
      if (!this.linkFallbackSaid) {
        this.linkFallbackSaid = true;
        this.log.verbose(`Following the interface by name in this network namespace (${(err as Error).message})`);
      }
      const mtu = linkMtu(name);
      this.link = { name, callerNetns: mtu > 0 };
      return mtu;
    }
    if (link.callerNetns !== this.link.callerNetns) {
      this.log.verbose(link.callerNetns ? 'Interface is back in this network namespace' : 'Interface moved to another network namespace');
    }
    this.link = { name: link.name, callerNetns: link.callerNetns };
    return link.mtu;
  }

  private allOffloadCounters(): OffloadCounters[] {
    return [this.offloadCounters, ...(this.workers?.offload ?? [])];
  }

  /** One line: which offloads are on, and why any is off. */
  private logOffloads(): void {
    const udp = this.sender.describe();
    const offloads = this.tun[0]!.offloads;
    const notes = [...offloads.notes, ...udp.notes];
    const on = [...describeTunOffloads(offloads), ...udp.on];
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
    clearTimeout(this.timer);
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
      this.sender = this.controlSender(udp[0]!);
      await this.workers.start(udp);
      return;
    }
    const stages = this.inlineStages;
    const aead = aeadBackend(this.crypto);
    const outbound = outboundContextOf(this.engine, aead.seal, stages);
    const inbound = inboundContextOf(this.engine, aead.open, stages);
    const loop = new QueueLoop({
      tun: this.tun[0]!, udp: udp[0]!, settings: this.offload, counters: this.offloadCounters, stats: this.inlineStats, log: this.log,
      outbound, inbound, control: this.control,
      refresh: () => {
        const now = this.engine.now();
        const routes = this.engine.routeTable();
        outbound.now = now;
        inbound.now = now;
        outbound.routes = routes;
        inbound.routes = routes;
        outbound.mtu = this.engine.mtu;
      },
      afterWork: () => this.afterWork(),
    });
    this.inline = loop;
    this.sender = loop.udp;
  }

  /** The control plane's send-only port, when the queues are workers'. */
  private controlSender(socket: UdpSocket): UdpPort {
    return new UdpPort({
      socket, settings: this.offload, counters: this.offloadCounters, log: this.log, slots: BATCH_SIZE,
      onSourceGone: (addrs, i) => this.control.sourceGone(addrs, i),
    });
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
    this.flushOutbox();
    this.publishRoutes();
    this.armTimer();
  }

  /** The queue workers get the compiled routes after each change of the allowed IPs. */
  private publishRoutes(): void {
    if (this.workers === undefined) return;
    const routes = this.engine.routeTable();
    if (routes === this.publishedRoutes) return;
    this.publishedRoutes = routes;
    this.workers.setRoutes(routes.words.buffer as SharedArrayBuffer);
  }

  private flushOutbox(): void {
    const outbox = this.engine.outbox;
    const batch = this.controlBatch;
    while (outbox.length > 0 && !this.closed) {
      const chunk = outbox.splice(0, BATCH_SIZE);
      batch.resetOffsets(0);
      let n = 0;
      for (const out of chunk) {
        if (out.packet.length > batch.slotSize) {
          this.engine.drops.add(Drop.SendFailed);
          continue;
        }
        batch.data.set(out.packet, batch.offsets[n]!);
        batch.lengths[n] = out.packet.length;
        const refused = out.peer !== undefined && this.engine.peerTable.sourceRefused(out.peer.id);
        writeAddr(batch.addrs, n, out.endpoint.address, out.endpoint.port, refused ? undefined : out.endpoint.local);
        n++;
      }
      batch.count = n;
      if (n === 0) continue;
      let failed: number;
      try {
        failed = this.sender.send(batch);
      } catch (err) {
        this.log.error(`UDP send: ${(err as Error).message}`);
        failed = n;
      }
      if (failed > 0) this.engine.drops.add(Drop.SendFailed, failed);
    }
  }

  private armTimer(): void {
    if (this.closed) return;
    const due = this.engine.nextDeadline();
    if (due === undefined) return;
    const deadline = Math.ceil(due / TIMER_SLOT_MS) * TIMER_SLOT_MS;
    if (deadline >= this.timerDeadline) return;
    clearTimeout(this.timer);
    this.timerDeadline = deadline;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, Math.ceil(deadline - this.engine.now())));
  }

  /**
   * Runs the due timers TIMER_SLICE peers at a time: between slices the thread serves
   * what came in meanwhile (handshake messages of peers that answer, the UAPI).
   */
  private onTimer(): void {
    this.timer = undefined;
    this.timerDeadline = Infinity;
    const more = this.engine.poll(TIMER_SLICE);
    if (more && !this.closed) {
      this.timerDeadline = -Infinity;
      this.timer = setTimeout(() => this.onTimer(), 0);
    }
    this.afterWork();
  }

  // ---- UAPI ----------------------------------------------------------------

  get(): UapiInterfaceState {
    const engine = this.engine;
    const peers: UapiPeerState[] = [];
    for (const peer of engine.peers) {
      const psk = peer.handshake.presharedKey;
      peers.push({
        publicKey: peer.publicKey,
        presharedKey: isZeroKey(psk) ? undefined : psk,
        endpoint: peer.endpoint,
        lastHandshakeWallMs: peer.lastHandshakeWallMs,
        rxBytes: peer.rxBytes,
        txBytes: peer.txBytes,
        persistentKeepalive: peer.persistentKeepalive,
        allowedIPs: engine.allowedIPs.prefixesOf(peer),
      });
    }
    return { privateKey: engine.privateKey, listenPort: this.udp[0]!.port, fwmark: this.fwmark, peers };
  }

  async set(request: SetRequest): Promise<void> {
    const engine = this.engine;
    // The steps that can fail (port in use, SO_MARK without CAP_NET_ADMIN) come first and
    // undo themselves, so a failed request changes nothing and is answered with its errno.
    const fwmark = request.fwmark ?? this.fwmark;
    if (request.listenPort !== undefined && request.listenPort !== this.udp[0]!.port) await this.rebind(request.listenPort, fwmark);
    else if (fwmark !== this.fwmark) this.setFwmark(fwmark);
    if (fwmark !== this.fwmark) this.sourceCheck?.checkEveryPeer();
    this.fwmark = fwmark;
    if (request.privateKey !== undefined) this.setPrivateKey(request.privateKey);
    if (request.replacePeers) for (const peer of [...engine.peers]) engine.removePeer(peer);
    const ownKey = engine.publicKey;
    for (const change of request.peers) {
      let peer = engine.peer(change.publicKey);
      if (change.remove) {
        if (peer !== undefined) engine.removePeer(peer);
        continue;
      }
      if (peer === undefined) {
        // wireguard-go ignores a peer that is the interface itself, and update_only skips new peers.
        if (change.updateOnly || (ownKey !== undefined && equalBytes(ownKey, change.publicKey))) continue;
        try {
          peer = engine.addPeer(change.publicKey);
        } catch (err) {
          if (err instanceof PeerTableFullError) throw new UapiError(ENOSPC, err.message);
          throw err;
        }
      }
      peer.update({
        ...(change.presharedKey === undefined ? {} : { presharedKey: change.presharedKey }),
        ...(change.endpoint === undefined ? {} : { endpoint: { address: change.endpoint.address, port: change.endpoint.port } }),
        ...(change.persistentKeepalive === undefined ? {} : { persistentKeepalive: change.persistentKeepalive }),
      });
      if (change.replaceAllowedIPs && change.allowedIPs.every((c) => !c.remove)) {
        // What `wg syncconf` sends for every peer: the whole list again, usually what the peer has.
        engine.allowedIPs.replacePeer(peer, change.allowedIPs.map((c) => c.prefix));
      } else {
        if (change.replaceAllowedIPs) engine.allowedIPs.removePeer(peer);
        for (const { prefix, remove } of change.allowedIPs) {
          if (remove) engine.allowedIPs.remove(prefix, peer);
          else engine.allowedIPs.insert(prefix, peer);
        }
      }
    }
    this.afterWork();
  }

  private setPrivateKey(key: Uint8Array | null): void {
    const engine = this.engine;
    const current = engine.privateKey;
    if (key === null) {
      if (current !== undefined) engine.setPrivateKey(undefined);
      return;
    }
    if (current !== undefined && equalBytes(current, key)) return;
    engine.setPrivateKey(key);
    // A peer with our own public key cannot exist (wireguard-go removes it).
    const self = engine.peer(engine.publicKey!);
    if (self !== undefined) engine.removePeer(self);
  }

  /** Marks every socket with `mark`, or (when one refuses) puts the old mark back on those done and throws. */
  private setFwmark(mark: number): void {
    const done: UdpSocket[] = [];
    try {
      for (const socket of this.udp) {
        udpSetFwmark(socket.fd, mark);
        done.push(socket);
      }
    } catch (err) {
      for (const socket of done) {
        try {
          udpSetFwmark(socket.fd, this.fwmark);
        } catch {
          // it was allowed a moment ago; nothing more to undo with
        }
      }
      throw new UapiError(errnoOf(err), (err as Error).message);
    }
  }

  /**
   * Moves the data path to new sockets on `port`, marked `fwmark`; they are opened (and
   * marked) first, so a port in use or a refused mark leaves everything as it was.
   */
  private async rebind(port: number, fwmark: number): Promise<void> {
    let next: UdpSocket[];
    try {
      next = openUdpSockets(port, fwmark, this.offload, this.udp.length);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UapiError(code === 'EADDRINUSE' ? EADDRINUSE : errnoOf(err), `cannot listen on port ${port}: ${(err as Error).message}`);
    }
    const old = this.udp;
    this.udp = next;
    if (this.workers !== undefined) {
      this.sender = this.controlSender(next[0]!);
      await this.workers.useSockets(next);
    } else {
      this.inline!.useSocket(next[0]!);
      this.sender = this.inline!.udp;
    }
    for (const s of old) closeFd(s.fd);
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

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

