// The shared peer table: per peer number, what the outbound data path needs to
// send without asking the control plane — the key slot of the current sending
// keypair and the endpoint as a UDP address record. The control plane (main
// thread) writes it whenever a peer's keypairs or endpoint change.
//
// Like the key table, it is reserved for MAX_PEERS at start-up and its pages are
// committed as peers are added; adding a peer past that fails with ENOSPC.
//
// An endpoint record has more than one writer: the control plane (`wg set`, a
// handshake from a new address) and any thread whose receive path authenticated a
// packet from a new address (roaming, in force for the very next packet sent to the
// peer from any queue). Each record is guarded by a sequence lock: a writer takes the
// even sequence to odd, writes, and releases it at the next even value; a reader
// copies the record and keeps the copy only if the sequence was even and unchanged.
import { ADDR_ECN, ADDR_LOCAL_FAMILY, ADDR_STRIDE, writeAddr } from '../pipeline/address.js';
import type { Endpoint } from './peer.js';
import { PeerTableFullError } from '../errors.js';

export const MAX_PEERS = 16_384;

const META_WORDS = 8;
const M_IN_USE = 0;
/** Key slot of the current sending keypair, or 0 (slot 0 is never used). */
const M_SEND_SLOT = 1;
/** 1 when the endpoint record is valid. */
const M_HAS_ENDPOINT = 2;
/** The endpoint record's sequence lock: odd while a writer is at it. */
const M_ENDPOINT_SEQ = 3;
/**
 * 1 when the route to the endpoint from its local address leaves through another
 * interface than the one the peer's packets come in on (or that address cannot send):
 * datagrams then leave from the routing table's choice (src/device/source-check.ts).
 */
const M_SOURCE_REFUSED = 4;

export interface PeerTableShared {
  readonly capacity: number;
  readonly meta: SharedArrayBuffer;
  readonly endpoints: SharedArrayBuffer;
}

export class PeerTable {
  readonly capacity: number;
  private readonly meta: Int32Array;
  /** ADDR_STRIDE bytes per peer: its endpoint as a UDP address record (with the local address replies leave from). */
  readonly endpoints: Uint8Array;
  private readonly free: number[] = [];

  constructor(capacity = MAX_PEERS, shared?: PeerTableShared) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_PEERS) {
      throw new RangeError(`peer table capacity must be an integer in [1, ${MAX_PEERS}], not ${capacity}`);
    }
    this.capacity = capacity;
    const s = shared ?? {
      capacity,
      meta: new SharedArrayBuffer(capacity * META_WORDS * 4),
      endpoints: new SharedArrayBuffer(capacity * ADDR_STRIDE),
    };
    this.meta = new Int32Array(s.meta);
    this.endpoints = new Uint8Array(s.endpoints);
    if (shared === undefined) for (let id = capacity - 1; id >= 0; id--) this.free.push(id);
  }

  static attach(shared: PeerTableShared): PeerTable {
    return new PeerTable(shared.capacity, shared);
  }

  share(): PeerTableShared {
    return { capacity: this.capacity, meta: this.meta.buffer as SharedArrayBuffer, endpoints: this.endpoints.buffer as SharedArrayBuffer };
  }

  // ---- control plane -------------------------------------------------------

  /** A free peer number; throws PeerTableFullError (ENOSPC) when all are taken. */
  allocate(): number {
    const id = this.free.pop();
    if (id === undefined) throw new PeerTableFullError(`no room for another peer: tundra holds at most ${this.capacity} peers`);
    const at = id * META_WORDS;
    Atomics.store(this.meta, at + M_SEND_SLOT, 0);
    Atomics.store(this.meta, at + M_HAS_ENDPOINT, 0);
    Atomics.store(this.meta, at + M_SOURCE_REFUSED, 0);
    Atomics.store(this.meta, at + M_IN_USE, 1);
    return id;
  }

  release(id: number): void {
    const at = id * META_WORDS;
    if (Atomics.load(this.meta, at + M_IN_USE) === 0) return;
    Atomics.store(this.meta, at + M_IN_USE, 0);
    Atomics.store(this.meta, at + M_SEND_SLOT, 0);
    Atomics.store(this.meta, at + M_HAS_ENDPOINT, 0);
    Atomics.store(this.meta, at + M_SOURCE_REFUSED, 0);
    this.free.push(id);
  }

  setSendSlot(id: number, slot: number): void {
    Atomics.store(this.meta, id * META_WORDS + M_SEND_SLOT, slot);
  }

  setEndpoint(id: number, endpoint: Endpoint | undefined): void {
    const at = id * META_WORDS + M_HAS_ENDPOINT;
    if (endpoint === undefined) {
      Atomics.store(this.meta, at, 0);
      return;
    }
    const seq = this.lockEndpoint(id);
    try {
      writeAddr(this.endpoints, id, endpoint.address, endpoint.port, endpoint.local);
    } finally {
      this.unlockEndpoint(id, seq);
    }
    Atomics.store(this.meta, at, 1);
  }

  /** Whether the endpoint's local address is refused as the source (see M_SOURCE_REFUSED). */
  setSourceRefused(id: number, refused: boolean): void {
    Atomics.store(this.meta, id * META_WORDS + M_SOURCE_REFUSED, refused ? 1 : 0);
  }

  // ---- any thread ----------------------------------------------------------

  sourceRefused(id: number): boolean {
    return Atomics.load(this.meta, id * META_WORDS + M_SOURCE_REFUSED) === 1;
  }

  /**
   * The peer's packets now come from record `i` of `addrs` (an authenticated packet's
   * source and the local address it was sent to): it is the endpoint from now on, for
   * every thread's next send. Allocation-free (the receive path calls it on roaming).
   * Bounds: record i < the batch's count lies in addrs (the batch contract, docs/design.md §3); lockEndpoint's
   * Atomics on meta throw for an id ≥ capacity, and endpoints holds capacity records.
   */
  learnEndpoint(id: number, addrs: Uint8Array, i: number): void {
    const endpoints = this.endpoints;
    const from = i * ADDR_STRIDE;
    const to = id * ADDR_STRIDE;
    const seq = this.lockEndpoint(id);
    for (let k = 0; k < ADDR_STRIDE; k++) endpoints[to + k] = addrs[from + k]!;
    endpoints[to + ADDR_ECN] = 0; // that datagram's ECN field, not the endpoint's
    this.unlockEndpoint(id, seq);
    Atomics.store(this.meta, id * META_WORDS + M_HAS_ENDPOINT, 1);
  }

  /**
   * Copies the peer's endpoint record into record `i` of `addrs`, never a half-written
   * one (it copies again while a writer is at it), without its local address while that
   * is refused as the source. Allocation-free.
   * Bounds: the Atomics.load on meta throws for an id ≥ capacity, and endpoints holds capacity records.
   */
  copyEndpoint(id: number, addrs: Uint8Array, i: number): void {
    const seqAt = id * META_WORDS + M_ENDPOINT_SEQ;
    const from = id * ADDR_STRIDE;
    const to = i * ADDR_STRIDE;
    const endpoints = this.endpoints;
    for (;;) {
      const before = Atomics.load(this.meta, seqAt);
      if ((before & 1) === 0) {
        for (let k = 0; k < ADDR_STRIDE; k++) addrs[to + k] = endpoints[from + k]!;
        if (Atomics.load(this.meta, seqAt) === before) break;
      }
    }
    if (this.sourceRefused(id)) addrs.fill(0, to + ADDR_LOCAL_FAMILY, to + ADDR_STRIDE);
  }

  /** Takes the record's sequence lock (from even to odd); returns the odd value. */
  private lockEndpoint(id: number): number {
    const at = id * META_WORDS + M_ENDPOINT_SEQ;
    for (;;) {
      const seq = Atomics.load(this.meta, at);
      if ((seq & 1) === 0 && Atomics.compareExchange(this.meta, at, seq, seq + 1) === seq) return seq + 1;
    }
  }

  private unlockEndpoint(id: number, seq: number): void {
    Atomics.store(this.meta, id * META_WORDS + M_ENDPOINT_SEQ, (seq + 1) | 0);
  }

  /** Key slot of the peer's current sending keypair, 0 for none. */
  sendSlot(id: number): number {
    return Atomics.load(this.meta, id * META_WORDS + M_SEND_SLOT);
  }

  hasEndpoint(id: number): boolean {
    return Atomics.load(this.meta, id * META_WORDS + M_HAS_ENDPOINT) === 1;
  }
}
