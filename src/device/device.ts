// One WireGuard interface: the protocol engine, a TUN device and a UDP socket tied
// together by the outbound and inbound stages. Everything runs on the event loop
// of one thread: libuv tells us when the TUN or the socket is readable, and each
// wakeup moves whole batches (design.md §2). The offloads live in the two ports
// (TUN split/coalesce, UDP GSO/GRO), below the stages. The UAPI server drives it
// through get()/set().
import { Engine } from '../protocol/engine.js';
import { DropCounters, Drop } from '../protocol/drop-reasons.js';
import { PacketBatch, SLOT_SIZE } from '../pipeline/batch.js';
import { PeerTableFullError } from '../pipeline/peer-table.js';
import { aeadBackend, type CryptoBackendName } from '../crypto/backends.js';
import type { UserStages } from '../stages/user-host.js';
import { EngineControl, inboundContextOf, outboundContextOf } from '../stages/engine-control.js';
import { InboundStage, type InboundContext } from '../stages/inbound.js';
import { OutboundStage, type OutboundContext } from '../stages/outbound.js';
import { setLinkMtu } from '../io/tun.js';
import { writeAddr } from '../io/udp.js';
import { FdWatcher } from '../io/watch.js';
import type { Logger } from '../log.js';
import { OffloadCounters } from '../offload/counters.js';
import { ALL_OFFLOADS, type OffloadSettings } from '../offload/settings.js';
import { MESSAGE_TRANSPORT_HEADER_SIZE } from '../protocol/constants.js';
import { TunPort } from './tun-port.js';
import { UdpPort } from './udp-port.js';
import {
  EADDRINUSE, EIO, ENOSPC, UapiError, type SetRequest, type UapiDevice, type UapiInterfaceState, type UapiPeerState,
} from '../uapi/protocol.js';

/** Packets per batch: wireguard-go's IdealBatchSize. */
export const BATCH_SIZE = 128;
/** Batches one wakeup may move before yielding to the event loop (libuv polls level-triggered). */
const BATCHES_PER_WAKEUP = 8;

export interface DeviceOptions {
  name: string;
  mtu?: number;
  logger: Logger;
  /** The offloads tundra may use (default: all the kernel has). */
  offload?: OffloadSettings;
  /** The AEAD of the data path (default native). */
  crypto?: CryptoBackendName;
  /** User stages to run on every batch; the device closes them. */
  stages?: UserStages;
}

/** Inbound packets start after the transport header in their slot and may grow to its end when coalesced. */
const COALESCE_CAPACITY = SLOT_SIZE - MESSAGE_TRANSPORT_HEADER_SIZE;

export class Device implements UapiDevice {
  readonly engine: Engine;
  readonly name: string;
  private readonly log: Logger;
  private readonly offload: OffloadSettings;
  /** Offload counters, kept across UDP rebinds. */
  readonly offloadCounters = new OffloadCounters();
  private readonly tun: TunPort;
  private readonly tunWatcher: FdWatcher;
  private udp: UdpPort;
  private fwmark = 0;
  private readonly outBatch: PacketBatch;
  private readonly inBatch: PacketBatch;
  private readonly controlBatch: PacketBatch;
  private readonly outbound = new OutboundStage(BATCH_SIZE);
  private readonly inbound = new InboundStage(BATCH_SIZE);
  private timer: NodeJS.Timeout | undefined;
  private timerDeadline = Infinity;
  private closed = false;

  private readonly outboundContext: OutboundContext;
  private readonly inboundContext: InboundContext;
  private readonly control: EngineControl;
  private readonly stages: UserStages | undefined;

  constructor(options: DeviceOptions) {
    this.name = options.name;
    this.log = options.logger;
    this.offload = options.offload ?? ALL_OFFLOADS;
    const mtu = options.mtu ?? 1420;
    this.engine = new Engine({ mtu });
    this.stages = options.stages;
    const engine = this.engine;
    this.control = new EngineControl(engine);
    const aead = aeadBackend(options.crypto ?? 'native');
    this.outboundContext = outboundContextOf(engine, aead.seal, this.stages);
    this.inboundContext = inboundContextOf(engine, aead.open, this.stages);
    this.outBatch = new PacketBatch(BATCH_SIZE, SLOT_SIZE);
    this.inBatch = new PacketBatch(BATCH_SIZE, SLOT_SIZE);
    this.controlBatch = new PacketBatch(BATCH_SIZE, SLOT_SIZE);

    this.tun = new TunPort(options.name, this.offload, this.offloadCounters, this.log, BATCH_SIZE);
    try {
      setLinkMtu(options.name, mtu);
      this.udp = this.bind(0);
    } catch (err) {
      this.tun.close();
      throw err;
    }
    this.tunWatcher = new FdWatcher(this.tun.fd, () => this.onTunReadable());
    this.tunWatcher.watch(true, false);
    this.logOffloads();
  }

  /** Every drop so far, by reason: the engine and the stages share one set of counters. */
  get drops(): DropCounters {
    return this.engine.drops;
  }

  /** The drops of the engine, the stages and the offload paths, by reason. */
  dropSnapshot(): Record<string, number> {
    return { ...this.engine.drops.snapshot(), ...this.offloadCounters.drops(), ...this.stages?.snapshot().drops };
  }

  /** One line: which offloads are on, and why any is off. */
  private logOffloads(): void {
    const udp = this.udp.describe();
    const notes = [...this.tun.offloads.notes, ...udp.notes];
    const on = [...this.tun.describe(), ...udp.on];
    this.log.verbose(`Offloads on: ${on.length > 0 ? on.join(', ') : 'none'}${notes.map((n) => `; ${n}`).join('')}`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.tunWatcher.close();
    this.udp.close();
    this.tun.close();
    this.stages?.close();
    for (const peer of [...this.engine.peers]) this.engine.removePeer(peer);
  }

  // ---- data path -----------------------------------------------------------

  private onTunReadable(): void {
    const batch = this.outBatch;
    let round = 0;
    for (; round < BATCHES_PER_WAKEUP && !this.closed; round++) {
      const n = this.guard('TUN read', () => this.tun.read(batch));
      if (n === undefined) break;
      if (n > 0 && this.outbound.run(batch, this.refresh(this.outboundContext), this.control) > 0) this.sendBatch(batch);
      // Segments of a super-packet that did not fit wait in the port, not in the kernel: no wakeup for them.
      if (n < BATCH_SIZE && !this.tun.pending) break;
    }
    if (round === BATCHES_PER_WAKEUP && this.tun.pending) setImmediate(() => this.closed || this.onTunReadable());
    this.afterWork();
  }

  private onUdpReadable(): void {
    const batch = this.inBatch;
    let round = 0;
    for (; round < BATCHES_PER_WAKEUP && !this.closed; round++) {
      const udp = this.udp;
      const n = this.guard('UDP receive', () => udp.receive(batch));
      if (n === undefined) break;
      if (n > 0 && this.inbound.run(batch, this.refresh(this.inboundContext), this.control) > 0) this.writeTun(batch);
      if (n < BATCH_SIZE && !udp.pending) break;
    }
    if (round === BATCHES_PER_WAKEUP && this.udp.pending) setImmediate(() => this.closed || this.onUdpReadable());
    this.afterWork();
  }

  /** Brings a stage context up to date before a batch: the clock, the routes after a change, the MTU. */
  private refresh<C extends InboundContext | OutboundContext>(ctx: C): C {
    ctx.now = this.engine.now();
    ctx.routes = this.engine.routeTable();
    if ('mtu' in ctx) ctx.mtu = this.engine.mtu;
    return ctx;
  }

  private sendBatch(batch: PacketBatch): void {
    const failed = this.guard('UDP send', () => this.udp.send(batch)) ?? batch.count;
    if (failed > 0) this.drops.add(Drop.SendFailed, failed);
  }

  private writeTun(batch: PacketBatch): void {
    const failed = this.guard('TUN write', () => this.tun.write(batch, COALESCE_CAPACITY)) ?? batch.count;
    if (failed > 0) this.drops.add(Drop.TunWriteFailed, failed);
  }

  /** Sends what the engine queued (handshakes, keepalives, staged data) and re-arms the timer. */
  private afterWork(): void {
    this.flushOutbox();
    this.armTimer();
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
          this.drops.add(Drop.SendFailed);
          continue;
        }
        batch.data.set(out.packet, batch.offsets[n]!);
        batch.lengths[n] = out.packet.length;
        writeAddr(batch.addrs, n, out.endpoint.address, out.endpoint.port);
        n++;
      }
      batch.count = n;
      if (n > 0) this.sendBatch(batch);
    }
  }

  private armTimer(): void {
    if (this.closed) return;
    const deadline = this.engine.nextDeadline();
    if (deadline === undefined || deadline >= this.timerDeadline) return;
    clearTimeout(this.timer);
    this.timerDeadline = deadline;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, Math.ceil(deadline - this.engine.now())));
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerDeadline = Infinity;
    this.engine.poll();
    this.afterWork();
  }

  /** Runs an I/O call; an error there (the device went away) is logged, not thrown into libuv. */
  private guard<T>(what: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.log.error(`${what}: ${(err as Error).message}`);
      return undefined;
    }
  }

  private bind(port: number): UdpPort {
    return new UdpPort({
      port, fwmark: this.fwmark, settings: this.offload, counters: this.offloadCounters, log: this.log,
      slots: BATCH_SIZE, onReadable: () => this.onUdpReadable(),
    });
  }

  // ---- UAPI ----------------------------------------------------------------

  get(): UapiInterfaceState {
    const engine = this.engine;
    const peers: UapiPeerState[] = [];
    for (const peer of engine.peers) {
      const psk = peer.handshake.presharedKey;
      peers.push({
        publicKey: peer.publicKey,
        presharedKey: psk.some((b) => b !== 0) ? psk : undefined,
        endpoint: peer.endpoint,
        lastHandshakeWallMs: peer.lastHandshakeWallMs,
        rxBytes: peer.rxBytes,
        txBytes: peer.txBytes,
        persistentKeepalive: peer.persistentKeepalive,
        allowedIPs: engine.allowedIPs.prefixesOf(peer),
      });
    }
    return { privateKey: engine.privateKey, listenPort: this.udp.port, fwmark: this.fwmark, peers };
  }

  async set(request: SetRequest): Promise<void> {
    const engine = this.engine;
    // Bind first: the one step that can fail (port in use) then leaves everything unchanged.
    if (request.listenPort !== undefined && request.listenPort !== this.udp.port) this.rebind(request.listenPort);
    if (request.privateKey !== undefined) this.setPrivateKey(request.privateKey);
    if (request.fwmark !== undefined && request.fwmark !== this.fwmark) {
      this.fwmark = request.fwmark;
      this.udp.setFwmark(request.fwmark);
    }
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
      if (change.replaceAllowedIPs) engine.allowedIPs.removePeer(peer);
      for (const { prefix, remove } of change.allowedIPs) {
        if (remove) engine.allowedIPs.remove(prefix, peer);
        else engine.allowedIPs.insert(prefix, peer);
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

  private rebind(port: number): void {
    let next: UdpPort;
    try {
      next = this.bind(port);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UapiError(code === 'EADDRINUSE' ? EADDRINUSE : EIO, `cannot listen on port ${port}: ${(err as Error).message}`);
    }
    const old = this.udp;
    this.udp = next;
    old.close();
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

