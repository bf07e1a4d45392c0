// The protocol core of one WireGuard interface, free of I/O (docs/design.md §1): it is fed
// handshake and cookie messages, plaintext packets and a clock, and answers with
// datagrams to send. Transport messages are the data path's (src/stages/): it seals
// and opens them in batches and reports back through noteTransportSent /
// noteTransportReceived. What the engine sends itself (keepalives, packets staged for
// a handshake) it seals one at a time with the data path's AEAD backend.
import { aeadBackend, type SealBatch } from '../crypto/backends.js';
import { DESC_COUNTER_HI, DESC_COUNTER_LO, DESC_KEY_INDEX, DESC_LENGTH, DESC_OFFSET, DESC_STRIDE } from '../crypto/native-aead.js';
import { AEAD_TAG_SIZE } from '../crypto/sizes.js';
import { importPrivateKey, type StaticKey } from '../crypto/x25519.js';
import { AllowedIPs } from '../routing/allowed-ips.js';
import { RouteTable } from '../routing/route-table.js';
import { KeyTable } from './key-table.js';
import { PeerTable } from './peer-table.js';
import {
  MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION, MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT_HEADER_SIZE, UNDER_LOAD_AGE, UNDER_LOAD_SHARE, UNDER_LOAD_STICKY,
} from './constants.js';
import { CookieChecker } from './cookie.js';
import { Drop, DropCounters, type DropReason } from './drop-reasons.js';
import { Keypair } from './keypair.js';
import {
  classifyMessage, decodeCookieReply, decodeInitiation, decodeResponse,
  encodeInitiation, encodeResponse, paddingSize, writeTransportHeader,
} from './messages.js';
import { consumeInitiation, consumeResponse, createInitiation, createResponse, deriveSessionKeys } from './noise.js';
import { HandshakeStats } from './handshake-stats.js';
import { ECN_NOT_ECT, ipEcn, outerEcn } from './ip-packet.js';
import { Peer, MAX_STAGED_PACKETS, sameEndpoint, type Endpoint, type PeerOptions } from './peer.js';
import { RateLimiter } from './ratelimiter.js';
import { TimerQueue } from './timer-queue.js';
import { rekeyAfterTimeOf, shouldRekeyOnReceive, shouldRekeyOnSend, TimerAction } from './timers.js';

/** A datagram to send: to a peer's endpoint, or (cookie replies) to whoever asked. */
export interface Outgoing {
  readonly peer: Peer | undefined;
  readonly endpoint: Endpoint;
  readonly packet: Uint8Array;
  /** The outer ECN field to send with (RFC 6040, from a sealed packet's plaintext); 0 when absent. */
  readonly ecn?: number;
}

/** What receive() made of one handshake or cookie message. */
export type Received =
  | { readonly kind: 'handshake'; readonly peer: Peer }
  | { readonly kind: 'cookie'; readonly peer: Peer }
  | { readonly kind: 'drop'; readonly reason: DropReason };

export interface EngineOptions {
  privateKey?: Uint8Array;
  /** Monotonic milliseconds; drives every timer. */
  now?: () => number;
  /** Wall-clock milliseconds since the Unix epoch; only for TAI64N timestamps. */
  wallClock?: () => number;
  /** [0, 1); timer jitter. */
  random?: () => number;
  /** Tunnel MTU: transport payloads are padded to a multiple of 16 up to it. */
  mtu?: number;
  /** Capacity of the shared tables (default: KEY_SLOTS key slots, MAX_PEERS peers). */
  keySlots?: number;
  maxPeers?: number;
  /** Told each timer that expires, before the engine acts on it (tests, tracing). */
  onTimer?: (peer: Peer, action: TimerAction) => void;
  /** Ms after which the initiator rekeys (tests and soaks: REKEY_TIMEOUT..REKEY_AFTER_TIME, the default). */
  rekeyAfterTime?: number;
  /** Told after a peer's endpoint changed (set, learnt or roamed), once the peer table has it. */
  onEndpointChange?: (peer: Peer) => void;
  /** The data path's transport AEAD (crypto/backends.ts), which keepalives and staged packets are sealed with too (default native). */
  seal?: SealBatch;
}

/** What a local index names: a peer's handshake in progress, or one of its keypairs. */
export interface IndexEntry {
  readonly peer: Peer;
  /** Undefined while the index names the peer's handshake in progress. */
  readonly keypair: Keypair | undefined;
}

const EMPTY = new Uint8Array(0);
const hexOf = (key: Uint8Array): string => Buffer.from(key).toString('hex');

export class Engine {
  readonly now: () => number;
  private readonly wallClock: () => number;
  private readonly random: () => number;
  private readonly onTimer: ((peer: Peer, action: TimerAction) => void) | undefined;
  private readonly rekeyAfterTime: number;
  private readonly onEndpointChange: ((peer: Peer) => void) | undefined;
  private readonly seal: SealBatch;
  /** The one descriptor row of the packet being sealed. */
  private readonly sealDesc = new Uint32Array(DESC_STRIDE);
  mtu: number;
  private local: StaticKey | undefined;
  private readonly peersByKey = new Map<string, Peer>();
  private readonly indices = new Map<number, IndexEntry>();
  /** The data path's view of the keypairs and peers, kept in step by every change here. */
  readonly keyTable: KeyTable;
  readonly peerTable: PeerTable;
  private readonly peersById = new Map<number, Peer>();
  /** Peers with pending timers, by when to wake them. */
  private readonly timerQueue = new TimerQueue<Peer>();
  /** Order of the next peer added (Peer.order). */
  private peersAdded = 0;
  private routes: RouteTable = RouteTable.empty();
  private routesVersion = 0;
  readonly allowedIPs = new AllowedIPs<Peer>();
  private readonly cookieChecker: CookieChecker;
  private readonly rateLimiter: RateLimiter;
  private underLoadEnds = -Infinity;
  readonly drops = new DropCounters();
  readonly handshakes = new HandshakeStats();
  /** Bytes and transport packets of peers that were removed, so device-wide totals never go back. */
  removedRxBytes = 0;
  removedTxBytes = 0;
  removedRxPackets = 0;
  removedTxPackets = 0;
  /** Datagrams produced by the last calls, for the caller to send and clear. */
  readonly outbox: Outgoing[] = [];

  constructor(options: EngineOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    this.wallClock = options.wallClock ?? Date.now;
    this.random = options.random ?? Math.random;
    this.onTimer = options.onTimer;
    this.rekeyAfterTime = rekeyAfterTimeOf(options.rekeyAfterTime);
    this.onEndpointChange = options.onEndpointChange;
    this.seal = options.seal ?? aeadBackend('native').seal;
    this.mtu = options.mtu ?? 1420;
    this.local = options.privateKey === undefined ? undefined : importPrivateKey(options.privateKey);
    this.cookieChecker = new CookieChecker(this.local?.publicKey ?? new Uint8Array(32), this.now);
    this.rateLimiter = new RateLimiter(this.now);
    this.keyTable = new KeyTable(options.keySlots);
    this.peerTable = new PeerTable(options.maxPeers);
  }

  get publicKey(): Uint8Array | undefined {
    return this.local?.publicKey;
  }

  /** The interface key, tundra's own copy: zeroed when replaced, so copy it to keep it. */
  get privateKey(): Uint8Array | undefined {
    return this.local?.privateKey;
  }

  get peers(): IterableIterator<Peer> {
    return this.peersByKey.values();
  }

  /**
   * Sets or clears (undefined) the interface key; sessions keyed to the old key end.
   * The key is copied in (the caller's buffer is left alone); the old copy and each
   * peer's static DH result made with it are zeroed.
   */
  setPrivateKey(privateKey: Uint8Array | undefined): void {
    const old = this.local;
    this.local = privateKey === undefined ? undefined : importPrivateKey(privateKey);
    this.cookieChecker.setLocalPublicKey(this.local?.publicKey ?? new Uint8Array(32));
    for (const peer of this.peersByKey.values()) {
      this.expireSession(peer);
      peer.handshake.setLocalKey(this.local);
    }
    old?.privateKey.fill(0);
  }

  peer(publicKey: Uint8Array): Peer | undefined {
    return this.peersByKey.get(hexOf(publicKey));
  }

  addPeer(publicKey: Uint8Array, options: PeerOptions = {}): Peer {
    const existing = this.peer(publicKey);
    if (existing !== undefined) {
      existing.update(options);
      return existing;
    }
    // Throws PeerTableFullError (ENOSPC) when the table is full.
    const id = this.peerTable.allocate();
    const peer = new Peer(
      publicKey, id, this.peersAdded++, this.timerQueue, this.local, this.now, this.random,
      this.keypairRetired, this.endpointChanged, options,
    );
    this.peersByKey.set(hexOf(publicKey), peer);
    this.peersById.set(id, peer);
    return peer;
  }

  removePeer(peer: Peer): void {
    this.removedRxBytes += peer.rxBytes;
    this.removedTxBytes += peer.txBytes;
    this.removedRxPackets += peer.rxPackets;
    this.removedTxPackets += peer.txPackets;
    this.expireSession(peer);
    peer.handshake.forgetKeys();
    peer.timers.stop();
    this.timerQueue.remove(peer);
    this.allowedIPs.removePeer(peer);
    this.peersByKey.delete(hexOf(peer.publicKey));
    this.peersById.delete(peer.id);
    this.peerTable.release(peer.id);
  }

  /** allowedIPs compiled for the data path (by peer number), compiled again after a change. */
  routeTable(): RouteTable {
    if (this.routesVersion !== this.allowedIPs.version) {
      this.routes = this.allowedIPs.compile((peer) => peer.id);
      this.routesVersion = this.allowedIPs.version;
    }
    return this.routes;
  }

  /** The peer with table number `id`. */
  peerById(id: number): Peer | undefined {
    return this.peersById.get(id);
  }

  /** The keypair in key table slot `slot`, if that slot still holds one of `peer`'s keypairs. */
  keypairInSlot(peer: Peer, slot: number): Keypair | undefined {
    const { current, previous, next } = peer.keypairs;
    if (current?.slot === slot) return current;
    if (previous?.slot === slot) return previous;
    if (next?.slot === slot) return next;
    return undefined;
  }

  /**
   * Reports how many handshake messages wait to be processed out of how many could, and
   * how long the oldest has waited (ms): from an eighth full, or UNDER_LOAD_AGE old, the
   * responder demands cookies (MAC2) for UNDER_LOAD_STICKY.
   */
  noteHandshakeBacklog(waiting: number, capacity: number, oldestAge = 0): void {
    if (waiting >= capacity * UNDER_LOAD_SHARE || oldestAge >= UNDER_LOAD_AGE) this.noteUnderLoad();
  }

  /** Under load for UNDER_LOAD_STICKY from now, whatever the backlog (a flood is being cut before it). */
  noteUnderLoad(): void {
    this.underLoadEnds = this.now() + UNDER_LOAD_STICKY;
  }

  isUnderLoad(): boolean {
    return this.now() < this.underLoadEnds;
  }

  /** When being under load ends, on this engine's clock (-Infinity: never was). */
  get underLoadUntil(): number {
    return this.underLoadEnds;
  }

  /**
   * What a local index names, on the control plane (handshake responses, cookie replies).
   * The data path resolves the indices of transport messages in the key table instead (KeyTable.activeSlot).
   */
  lookupIndex(index: number): IndexEntry | undefined {
    return this.indices.get(index);
  }

  // ---- receive -------------------------------------------------------------

  /**
   * Handles one handshake or cookie message from `from` (the inbound stage hands them
   * over; a transport message is dropped as unknown_type here). Replies (responses,
   * keepalives, staged data) go to the outbox.
   */
  receive(datagram: Uint8Array, from: Endpoint): Received {
    const type = classifyMessage(datagram, 0, datagram.length);
    if (typeof type !== 'number') return this.drop(type.drop);
    switch (type) {
      case MESSAGE_INITIATION:
      case MESSAGE_RESPONSE:
        return this.receiveHandshake(datagram, type, from);
      case MESSAGE_COOKIE_REPLY:
        return this.receiveCookieReply(datagram);
      default:
        return this.drop(Drop.UnknownType);
    }
  }

  private receiveHandshake(datagram: Uint8Array, type: number, from: Endpoint): Received {
    if (this.local === undefined) return this.handshakeDrop(Drop.UnknownPeer);
    if (!this.cookieChecker.checkMac1(datagram)) return this.handshakeDrop(Drop.BadMac1);
    if (this.isUnderLoad()) {
      const source = endpointBytes(from);
      if (!this.cookieChecker.checkMac2(datagram, source)) {
        const sender = new DataView(datagram.buffer, datagram.byteOffset).getUint32(4, true);
        this.outbox.push({ peer: undefined, endpoint: from, packet: this.cookieChecker.createReply(datagram, sender, source) });
        this.handshakes.cookieRepliesSent++;
        return this.drop(Drop.CookieSent);
      }
      if (!this.rateLimiter.allow(from.address)) return this.handshakeDrop(Drop.RateLimited);
    }
    return type === MESSAGE_INITIATION ? this.receiveInitiation(datagram, from) : this.receiveResponse(datagram, from);
  }

  private receiveInitiation(datagram: Uint8Array, from: Endpoint): Received {
    const msg = decodeInitiation(datagram);
    if ('drop' in msg) return this.handshakeDrop(msg.drop);
    const found = consumeInitiation(this.local!, msg, (pk) => this.peer(pk)?.handshake, this.now());
    if ('drop' in found) return this.handshakeDrop(found.drop);
    this.handshakes.initiationsReceived++;
    const peer = this.peer(found.remoteStatic)!;
    peer.endpoint = from;
    peer.rxBytes += datagram.length;
    peer.timers.anyAuthenticatedPacketTraversal();
    peer.timers.anyAuthenticatedPacketReceived();
    this.sendResponse(peer);
    return { kind: 'handshake', peer };
  }

  private sendResponse(peer: Peer): void {
    const hs = peer.handshake;
    this.releaseHandshakeIndex(peer);
    const index = this.allocateIndex({ peer, keypair: undefined });
    if (index === undefined) return;
    const msg = createResponse(hs, index);
    if (msg === undefined) {
      this.indices.delete(index);
      this.keyTable.release(index);
      return;
    }
    const packet = encodeResponse(msg);
    peer.cookies.addMacs(packet);
    this.beginSession(peer);
    peer.timers.anyAuthenticatedPacketTraversal();
    peer.timers.anyAuthenticatedPacketSent();
    peer.timers.handshakeResponseSent();
    if (this.emitHandshake(peer, packet)) this.handshakes.responsesSent++;
  }

  private receiveResponse(datagram: Uint8Array, from: Endpoint): Received {
    const msg = decodeResponse(datagram);
    if ('drop' in msg) return this.handshakeDrop(msg.drop);
    const entry = this.indices.get(msg.receiver);
    if (entry === undefined || entry.keypair !== undefined) return this.handshakeDrop(Drop.UnknownIndex);
    const { peer } = entry;
    const consumed = consumeResponse(this.local!, msg, peer.handshake);
    if (consumed !== true) return this.handshakeDrop(consumed.drop);
    this.handshakes.responsesReceived++;
    if (peer.handshakeStartedAt !== undefined) {
      this.handshakes.observeDuration((this.now() - peer.handshakeStartedAt) / 1000);
      peer.handshakeStartedAt = undefined;
    }
    peer.endpoint = from;
    peer.rxBytes += datagram.length;
    peer.timers.anyAuthenticatedPacketTraversal();
    peer.timers.anyAuthenticatedPacketReceived();
    this.beginSession(peer);
    this.handshakeComplete(peer);
    this.sendKeepalive(peer);
    return { kind: 'handshake', peer };
  }

  private receiveCookieReply(datagram: Uint8Array): Received {
    const msg = decodeCookieReply(datagram);
    if ('drop' in msg) return this.drop(msg.drop);
    const entry = this.indices.get(msg.receiver);
    if (entry === undefined) return this.drop(Drop.UnknownIndex);
    if (!entry.peer.cookies.consumeReply(msg)) return this.drop(Drop.CookieDecryptFailed);
    this.handshakes.cookieRepliesReceived++;
    return { kind: 'cookie', peer: entry.peer };
  }

  /**
   * Bookkeeping after a transport message opened and passed the replay check:
   * confirms a responder's keypair, roams the endpoint, runs the timers.
   */
  noteTransportReceived(peer: Peer, keypair: Keypair, from: Endpoint, bytes: number, packets: number, isKeepalive: boolean): void {
    if (!sameEndpoint(peer.endpoint, from)) peer.endpoint = from;
    if (peer.keypairs.confirm(keypair)) {
      this.publishSendSlot(peer);
      this.handshakeComplete(peer);
      this.sendStaged(peer);
    }
    if (shouldRekeyOnReceive(peer.timers, keypair, this.now())) this.initiateHandshake(peer, false);
    peer.timers.anyAuthenticatedPacketTraversal();
    peer.timers.anyAuthenticatedPacketReceived();
    peer.rxBytes += bytes;
    peer.rxPackets += packets;
    if (!isKeepalive) peer.timers.dataReceived();
  }

  // ---- send ----------------------------------------------------------------

  /** Sends one plaintext IP packet to `peer`, staging it while a handshake is needed. */
  send(peer: Peer, packet: Uint8Array): void {
    if (peer.staged.length >= MAX_STAGED_PACKETS) {
      peer.staged.shift();
      this.drops.add(Drop.QueueFull);
    }
    peer.staged.push(packet);
    this.sendStaged(peer);
  }

  /** The keypair to send with now, or undefined when a handshake is needed first. */
  sendingKeypair(peer: Peer): Keypair | undefined {
    const keypair = peer.keypairs.current;
    if (keypair === undefined || keypair.isExpired(this.now())) return undefined;
    return keypair;
  }

  /** Bookkeeping after the data path sent `count` transport messages with `keypair`. */
  noteTransportSent(peer: Peer, keypair: Keypair, bytes: number, packets: number, carriedData: boolean): void {
    peer.txBytes += bytes;
    peer.txPackets += packets;
    peer.timers.anyAuthenticatedPacketTraversal();
    peer.timers.anyAuthenticatedPacketSent();
    if (carriedData) peer.timers.dataSent();
    if (shouldRekeyOnSend(keypair, this.now(), this.rekeyAfterTime)) this.initiateHandshake(peer, false);
  }

  /** Sends a keepalive, or whatever is staged; without a keypair that starts a handshake (wireguard-go's SendKeepalive). */
  sendKeepalive(peer: Peer): void {
    if (peer.staged.length === 0) peer.staged.push(EMPTY);
    this.sendStaged(peer);
  }

  private sendStaged(peer: Peer): void {
    if (peer.staged.length === 0) return;
    const keypair = this.sendingKeypair(peer);
    if (keypair === undefined) {
      this.initiateHandshake(peer, false);
      return;
    }
    for (let next = peer.staged[0]; next !== undefined; next = peer.staged[0]) {
      if (!this.sealAndEmit(peer, keypair, next)) return;
      peer.staged.shift();
    }
  }

  /**
   * Seals one payload with the next counter, as a batch of one (the key is the keypair's
   * slot in the key table, as on the data path); false when the keypair is used up.
   */
  private sealAndEmit(peer: Peer, keypair: Keypair, payload: Uint8Array): boolean {
    const counter = keypair.reserveSendCounters(1);
    if (counter === undefined) {
      this.drops.add(Drop.CounterExhausted);
      this.initiateHandshake(peer, false);
      return false;
    }
    const length = payload.length + paddingSize(payload.length, this.mtu);
    const packet = new Uint8Array(MESSAGE_TRANSPORT_HEADER_SIZE + length + AEAD_TAG_SIZE);
    const lo = Number(counter & 0xffffffffn);
    const hi = Number(counter >> 32n);
    writeTransportHeader(packet, 0, keypair.remoteIndex, lo, hi);
    packet.set(payload, MESSAGE_TRANSPORT_HEADER_SIZE);
    const desc = this.sealDesc;
    desc[DESC_OFFSET] = MESSAGE_TRANSPORT_HEADER_SIZE;
    desc[DESC_LENGTH] = length;
    desc[DESC_KEY_INDEX] = keypair.slot;
    desc[DESC_COUNTER_LO] = lo;
    desc[DESC_COUNTER_HI] = hi;
    if (this.seal(packet, this.keyTable.sendKeys, desc, 1) !== 1) {
      // Only if the AEAD library itself failed: the packet is lost as a failed send is.
      this.drops.add(Drop.SendFailed);
      return true;
    }
    const ecn = payload.length >= 2 ? outerEcn(ipEcn(payload, 0)) : ECN_NOT_ECT;
    if (this.emit(peer, packet, ecn)) this.noteTransportSent(peer, keypair, packet.length, 1, payload.length > 0);
    return true;
  }

  // ---- handshakes and timers -----------------------------------------------

  /**
   * Sends a handshake initiation unless one went out less than REKEY_TIMEOUT ago.
   * `isRetry` is true only for the retransmit timer; other callers reset the attempts.
   */
  initiateHandshake(peer: Peer, isRetry: boolean): void {
    if (this.local === undefined || !peer.timers.wantInitiation(isRetry)) return;
    this.releaseHandshakeIndex(peer);
    const index = this.allocateIndex({ peer, keypair: undefined });
    if (index === undefined) return;
    const msg = createInitiation(this.local, peer.handshake, index, this.wallClock());
    if (msg === undefined) {
      this.indices.delete(index);
      this.keyTable.release(index);
      this.drops.add(Drop.BadPublicKey);
      return;
    }
    const packet = encodeInitiation(msg);
    peer.cookies.addMacs(packet);
    peer.timers.anyAuthenticatedPacketTraversal();
    peer.timers.anyAuthenticatedPacketSent();
    if (this.emitHandshake(peer, packet)) {
      this.handshakes.initiationsSent++;
      // An attempt's duration runs from its first initiation; retries belong to it.
      if (!isRetry || peer.handshakeStartedAt === undefined) peer.handshakeStartedAt = this.now();
    }
    peer.timers.handshakeInitiated();
  }

  /**
   * Runs the due timers of the peers the timer queue holds as due, earliest first (ties
   * in the order the peers were added). Call at nextDeadline() (or on any schedule).
   * With `maxPeers`, stops after that many peers so a crowd of due peers (thousands of
   * persistent keepalives after `wg addconf`) cannot hold the thread: true when due
   * peers are left for another call.
   */
  poll(maxPeers = Infinity): boolean {
    return this.timerQueue.runDue(this.now(), maxPeers, this.wakePeer);
  }

  // One of each for every peer (not a closure per peer).
  private readonly keypairRetired = (keypair: Keypair): void => {
    this.indices.delete(keypair.localIndex);
  };

  private readonly endpointChanged = (peer: Peer): void => {
    this.peerTable.setEndpoint(peer.id, peer.endpoint);
    this.onEndpointChange?.(peer);
  };

  private readonly wakePeer = (peer: Peer): number | undefined => {
    this.expireTimers(peer);
    return peer.timers.nextDeadline();
  };

  /** Runs one peer's due timers (poll() does it for each peer it wakes). */
  expireTimers(peer: Peer): void {
    for (const action of peer.timers.poll()) {
      this.onTimer?.(peer, action);
      switch (action) {
        case TimerAction.RetransmitHandshake: this.initiateHandshake(peer, true); break;
        case TimerAction.NewHandshake: this.initiateHandshake(peer, false); break;
        case TimerAction.SendKeepalive:
        case TimerAction.SendPersistentKeepalive: this.sendKeepalive(peer); break;
        case TimerAction.GiveUpHandshake:
          peer.staged.length = 0;
          peer.handshakeStartedAt = undefined;
          this.handshakes.fail('timeout');
          break;
        case TimerAction.ZeroKeyMaterial: this.expireSession(peer); break;
      }
    }
  }

  /**
   * When poll() next has work (monotonic ms), for one setTimeout: never later than the
   * earliest deadline, at times earlier (then that poll finds nothing due). O(1).
   */
  nextDeadline(): number | undefined {
    return this.timerQueue.peek()?.wakeAt;
  }

  private beginSession(peer: Peer): void {
    const keys = deriveSessionKeys(peer.handshake);
    if (keys === undefined) return;
    // The handshake's index now names the keypair.
    const keypair = new Keypair(this.keyTable, keys.sendKey, keys.receiveKey, keys.localIndex, keys.remoteIndex, keys.isInitiator, this.now());
    keys.sendKey.fill(0);
    keys.receiveKey.fill(0);
    this.indices.set(keys.localIndex, { peer, keypair });
    peer.keypairs.install(keypair);
    this.publishSendSlot(peer);
    peer.timers.sessionDerived();
  }

  /** Points the data path at the peer's current sending keypair (or at none). */
  private publishSendSlot(peer: Peer): void {
    this.peerTable.setSendSlot(peer.id, peer.keypairs.current?.slot ?? 0);
  }

  private handshakeComplete(peer: Peer): void {
    peer.timers.handshakeComplete();
    peer.lastHandshakeWallMs = this.wallClock();
  }

  /** Forgets all keys and the handshake in progress (zero-key timer, key change, removal). */
  private expireSession(peer: Peer): void {
    this.releaseHandshakeIndex(peer);
    peer.handshake.clear();
    peer.keypairs.clear();
    this.publishSendSlot(peer);
  }

  private releaseHandshakeIndex(peer: Peer): void {
    const index = peer.handshake.localIndex;
    if (index !== 0 && this.indices.has(index) && this.indices.get(index)!.keypair === undefined) {
      this.indices.delete(index);
      this.keyTable.release(index);
    }
  }

  /** A fresh local index naming a key table slot, or undefined (counted) when the table is full. */
  private allocateIndex(entry: IndexEntry): number | undefined {
    const index = this.keyTable.allocate(entry.peer.id);
    if (index === undefined) {
      this.drops.add(Drop.KeyTableFull);
      return undefined;
    }
    this.indices.set(index, entry);
    return index;
  }

  private emit(peer: Peer, packet: Uint8Array, ecn = ECN_NOT_ECT): boolean {
    if (peer.endpoint === undefined) {
      this.drops.add(Drop.NoEndpoint);
      return false;
    }
    this.outbox.push({ peer, endpoint: peer.endpoint, packet, ecn });
    return true;
  }

  /**
   * The local `address` can no longer send (it left the host): every endpoint that
   * replies from it forgets it and replies from the routing table's choice until its
   * peer's next packet says where it sends to now. Returns how many did.
   */
  forgetLocalAddress(address: string): number {
    let peers = 0;
    for (const peer of this.peersByKey.values()) {
      const endpoint = peer.endpoint;
      if (endpoint?.local?.address !== address) continue;
      peer.endpoint = { address: endpoint.address, port: endpoint.port };
      peers++;
    }
    return peers;
  }

  /** emit() for a handshake message, which counts in the peer's transfer as the kernel's WireGuard counts it. */
  private emitHandshake(peer: Peer, packet: Uint8Array): boolean {
    if (!this.emit(peer, packet)) return false;
    peer.txBytes += packet.length;
    return true;
  }

  /** A refused handshake message: a drop, and a failed handshake of that reason. */
  private handshakeDrop(reason: DropReason): Received {
    this.handshakes.fail(reason);
    return this.drop(reason);
  }

  private drop(reason: DropReason): Received {
    this.drops.add(reason);
    return { kind: 'drop', reason };
  }
}

const encoder = new TextEncoder();

/** Bytes identifying a UDP source, for cookies: only this side ever checks them. */
function endpointBytes(endpoint: Endpoint): Uint8Array {
  return encoder.encode(`${endpoint.address} ${endpoint.port}`);
}
