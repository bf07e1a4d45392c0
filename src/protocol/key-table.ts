// The shared key table (docs/design.md §3): every keypair's keys, indices, send counter
// and replay window in SharedArrayBuffers, so a data-path kernel on any thread
// works from a slot number alone and never needs a Keypair object.
//
// - The control plane (main thread) allocates, installs and releases slots; a slot's
//   generation changes each time, so a tally that names a slot and its generation
//   can tell whether the keypair is still the one it counted for.
// - The send counter is a 64-bit cell advanced atomically by a whole batch at once,
//   so any number of threads can reserve disjoint counter ranges.
// - The replay window of a slot is used only by the in-order consumer of that
//   keypair's packets, under the slot's lock (two receive streams may carry one
//   keypair after a roam).
// - The receiver index names its slot, yet looks like a random 32-bit number, as
//   wireguard-go's do (which say nothing of how many sessions there are or when they
//   began): it is a keyed permutation (a 4-round Feistel network with per-table random
//   round keys) of the slot in the low 16 bits and 16 fresh random bits above. A
//   received index resolves in O(1), without allocating: undo the permutation, then
//   compare the whole index with the one the slot holds, so a forged one is refused.
//
// Capacity is fixed at start-up: the buffers are reserved for KEY_SLOTS slots, and
// the kernel commits their pages only when a slot is first used, so the resident
// size follows the peers (about 1.2 KiB per keypair in use). A handshake that finds
// no free slot fails with a counted drop (and `wg set` adding a peer past the peer
// table's capacity gets ENOSPC, see peer-table.ts).
import { getRandomValues, randomInt } from 'node:crypto';
import { REJECT_AFTER_MESSAGES } from './constants.js';
import { KEY_SIZE } from '../crypto/sizes.js';
import { REPLAY_STATE_WORDS } from './replay.js';

/** Bits of a (deciphered) receiver index that name the slot. */
export const KEY_SLOT_BITS = 16;
/** Slots in a table: every peer needs up to four (current, previous, next and a handshake in progress). */
export const KEY_SLOTS = 1 << KEY_SLOT_BITS;
const SLOT_MASK = KEY_SLOTS - 1;

export const SLOT_FREE = 0;
/** A handshake's index is reserved; no keys yet. */
export const SLOT_HANDSHAKE = 1;
/** Keys installed: the data path may use it. */
export const SLOT_ACTIVE = 2;

/** Int32 words per slot in `meta`. */
const META_WORDS = 8;
const M_STATE = 0;
const M_LOCAL_INDEX = 1;
const M_REMOTE_INDEX = 2;
const M_PEER = 3;
const M_GENERATION = 4;
const M_LOCK = 5;

export interface KeyTableShared {
  readonly capacity: number;
  readonly sendKeys: SharedArrayBuffer;
  readonly receiveKeys: SharedArrayBuffer;
  readonly meta: SharedArrayBuffer;
  readonly createdAt: SharedArrayBuffer;
  readonly sendCounters: SharedArrayBuffer;
  readonly replay: SharedArrayBuffer;
  /** The index permutation's round keys (4), the same on every thread. */
  readonly indexKeys: readonly number[];
}

const LIMIT = REJECT_AFTER_MESSAGES;

/**
 * The lock owner of a view that never takes a replay lock: a crypto pool worker only
 * seals and opens, and the replay check runs on the queue that owns the flight.
 * 0 is also what marks a free lock, so such a view must never lock (lockReplay throws).
 */
export const NO_REPLAY_LOCKS = 0;

/**
 * The replay-lock owner number of queue worker `queue`: 0 marks a free lock and 1 the
 * control plane's view, so the queues start at 2. The supervisor frees a dead worker's
 * locks by this number (releaseReplayLocks).
 */
export function queueLockOwner(queue: number): number {
  return queue + 2;
}

/** The Feistel round function: 16 bits of a murmur3-style mix of `half` and the round key. */
function round(half: number, key: number): number {
  let h = Math.imul(half ^ key, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h & SLOT_MASK;
}

export class KeyTable {
  readonly capacity: number;
  /** Send keys, 32 bytes per slot: the `keys` argument of the AEAD batch, keyIndex = slot. */
  readonly sendKeys: Uint8Array;
  /** Receive keys, likewise. */
  readonly receiveKeys: Uint8Array;
  private readonly meta: Int32Array;
  /** When the keypair was made, on the control plane's monotonic clock (ms). */
  private readonly createdAt: Float64Array;
  private readonly sendCounters: BigUint64Array;
  /** REPLAY_STATE_WORDS per slot. */
  readonly replay: Uint32Array;
  /** Free slots (control plane only; workers attach without one). */
  private readonly free: number[] = [];
  /** What this view writes into a replay lock it holds: 1 on the control plane, queueLockOwner(queue) on a queue worker, NO_REPLAY_LOCKS on a crypto worker. */
  private readonly lockOwner: number;
  /** Round keys of the index permutation (fields, not an array: read per packet). */
  private readonly k0: number;
  private readonly k1: number;
  private readonly k2: number;
  private readonly k3: number;

  constructor(capacity = KEY_SLOTS, shared?: KeyTableShared, lockOwner = 1) {
    if (!Number.isInteger(capacity) || capacity < 2 || capacity > KEY_SLOTS) {
      throw new RangeError(`key table capacity must be an integer in [2, ${KEY_SLOTS}], not ${capacity}`);
    }
    this.capacity = capacity;
    this.lockOwner = lockOwner;
    const s = shared ?? {
      capacity,
      sendKeys: new SharedArrayBuffer(capacity * KEY_SIZE),
      receiveKeys: new SharedArrayBuffer(capacity * KEY_SIZE),
      meta: new SharedArrayBuffer(capacity * META_WORDS * 4),
      createdAt: new SharedArrayBuffer(capacity * 8),
      sendCounters: new SharedArrayBuffer(capacity * 8),
      replay: new SharedArrayBuffer(capacity * REPLAY_STATE_WORDS * 4),
      indexKeys: Array.from(getRandomValues(new Int32Array(4))),
    };
    this.sendKeys = new Uint8Array(s.sendKeys);
    this.receiveKeys = new Uint8Array(s.receiveKeys);
    this.meta = new Int32Array(s.meta);
    this.createdAt = new Float64Array(s.createdAt);
    this.sendCounters = new BigUint64Array(s.sendCounters);
    this.replay = new Uint32Array(s.replay);
    const [k0, k1, k2, k3] = s.indexKeys;
    this.k0 = k0! | 0;
    this.k1 = k1! | 0;
    this.k2 = k2! | 0;
    this.k3 = k3! | 0;
    // Slot 0 is never used, so no index is 0. Lowest slots first: their pages are the ones touched.
    if (shared === undefined) for (let slot = capacity - 1; slot >= 1; slot--) this.free.push(slot);
  }

  /**
   * A view of the same table for another thread (it must not allocate or release).
   * `lockOwner` (queueLockOwner(queue), one per thread) marks the replay locks it
   * takes, so that they can be freed if the thread dies holding one
   * (releaseReplayLocks); NO_REPLAY_LOCKS for a view that takes none.
   */
  static attach(shared: KeyTableShared, lockOwner: number): KeyTable {
    return new KeyTable(shared.capacity, shared, lockOwner);
  }

  share(): KeyTableShared {
    return {
      capacity: this.capacity,
      sendKeys: this.sendKeys.buffer as SharedArrayBuffer,
      receiveKeys: this.receiveKeys.buffer as SharedArrayBuffer,
      meta: this.meta.buffer as SharedArrayBuffer,
      createdAt: this.createdAt.buffer as SharedArrayBuffer,
      sendCounters: this.sendCounters.buffer as SharedArrayBuffer,
      replay: this.replay.buffer as SharedArrayBuffer,
      indexKeys: [this.k0, this.k1, this.k2, this.k3],
    };
  }

  get freeSlots(): number {
    return this.free.length;
  }

  // ---- control plane -------------------------------------------------------

  /**
   * Reserves a slot for a handshake of `peer` and returns its receiver index (never 0),
   * or undefined when the table is full. The index is unique while the slot is held.
   */
  allocate(peer: number): number | undefined {
    const slot = this.free.pop();
    if (slot === undefined) return undefined;
    let index = 0;
    // 0 means "no index" to the engine; at most one of the slot's 65,536 indices is 0.
    while (index === 0) index = this.indexOf(slot, randomInt(1 << (32 - KEY_SLOT_BITS)));
    const at = slot * META_WORDS;
    Atomics.store(this.meta, at + M_LOCAL_INDEX, index | 0);
    Atomics.store(this.meta, at + M_PEER, peer);
    Atomics.store(this.meta, at + M_REMOTE_INDEX, 0);
    Atomics.add(this.meta, at + M_GENERATION, 1);
    Atomics.store(this.meta, at + M_STATE, SLOT_HANDSHAKE);
    return index;
  }

  /** Installs a keypair's keys in the slot its index names; the data path sees it from now on. */
  install(localIndex: number, sendKey: Uint8Array, receiveKey: Uint8Array, remoteIndex: number, createdAt: number): number {
    const slot = this.slotOfIndex(localIndex);
    this.sendKeys.set(sendKey, slot * KEY_SIZE);
    this.receiveKeys.set(receiveKey, slot * KEY_SIZE);
    this.createdAt[slot] = createdAt;
    Atomics.store(this.sendCounters, slot, 0n);
    this.replay.fill(0, slot * REPLAY_STATE_WORDS, (slot + 1) * REPLAY_STATE_WORDS);
    const at = slot * META_WORDS;
    Atomics.store(this.meta, at + M_REMOTE_INDEX, remoteIndex | 0);
    Atomics.store(this.meta, at + M_STATE, SLOT_ACTIVE);
    return slot;
  }

  /** Frees the slot of `localIndex`, zeroing its keys. Unknown or stale indices are ignored. */
  release(localIndex: number): void {
    const slot = this.slotOfIndex(localIndex);
    const at = slot * META_WORDS;
    if (slot === 0 || slot >= this.capacity || Atomics.load(this.meta, at + M_LOCAL_INDEX) !== (localIndex | 0)) return;
    if (Atomics.load(this.meta, at + M_STATE) === SLOT_FREE) return;
    Atomics.store(this.meta, at + M_STATE, SLOT_FREE);
    Atomics.store(this.meta, at + M_LOCAL_INDEX, 0);
    Atomics.add(this.meta, at + M_GENERATION, 1);
    this.sendKeys.fill(0, slot * KEY_SIZE, (slot + 1) * KEY_SIZE);
    this.receiveKeys.fill(0, slot * KEY_SIZE, (slot + 1) * KEY_SIZE);
    this.free.push(slot);
  }

  // ---- any thread ----------------------------------------------------------

  /** The slot `localIndex` names (no check that it is in use, nor that it is below the capacity). */
  slotOfIndex(localIndex: number): number {
    // indexOf()'s rounds backwards, (l, r) = (r' ^ F(l'), l'), but for the first: that one
    // left the slot unchanged in the left half, so undoing the last three finds it.
    const l4 = localIndex >>> KEY_SLOT_BITS;
    const r4 = localIndex & SLOT_MASK;
    const l3 = r4 ^ round(l4, this.k3);
    const l2 = l4 ^ round(l3, this.k2);
    return l3 ^ round(l2, this.k1);
  }

  /**
   * The receiver index of `slot` with random part `random` (16 bits): four Feistel
   * rounds (l, r) → (r, l ^ F(r)) over (random, slot).
   */
  private indexOf(slot: number, random: number): number {
    const r1 = (random & SLOT_MASK) ^ round(slot, this.k0);
    const r2 = slot ^ round(r1, this.k1);
    const r3 = r1 ^ round(r2, this.k2);
    const r4 = r2 ^ round(r3, this.k3);
    return ((r3 << KEY_SLOT_BITS) | r4) >>> 0;
  }

  /**
   * The active slot a received index names, or -1: unknown, stale or forged (not the
   * index its slot holds), a handshake still in progress, or freed. Allocation-free.
   */
  activeSlot(localIndex: number): number {
    const slot = this.slotOfIndex(localIndex);
    if (slot === 0 || slot >= this.capacity) return -1;
    const at = slot * META_WORDS;
    if (Atomics.load(this.meta, at + M_LOCAL_INDEX) !== (localIndex | 0)) return -1;
    return Atomics.load(this.meta, at + M_STATE) === SLOT_ACTIVE ? slot : -1;
  }

  isActive(slot: number): boolean {
    return Atomics.load(this.meta, slot * META_WORDS + M_STATE) === SLOT_ACTIVE;
  }

  peerOf(slot: number): number {
    return Atomics.load(this.meta, slot * META_WORDS + M_PEER);
  }

  generationOf(slot: number): number {
    return Atomics.load(this.meta, slot * META_WORDS + M_GENERATION);
  }

  remoteIndexOf(slot: number): number {
    return Atomics.load(this.meta, slot * META_WORDS + M_REMOTE_INDEX) >>> 0;
  }

  // Bounds: slot < capacity = createdAt.length: activeSlot() checks it; the outbound stage asks isActive(slot) first,
  // whose Atomics.load throws outside meta (capacity × META_WORDS).
  createdAtOf(slot: number): number {
    return this.createdAt[slot]!;
  }

  /** Send counters used so far (the next one to hand out). */
  sendCounter(slot: number): bigint {
    return Atomics.load(this.sendCounters, slot);
  }

  /**
   * Reserves `n` consecutive send counters and returns the first, or -1n when they
   * would reach REJECT_AFTER_MESSAGES (the keypair is used up; it stays used up).
   */
  reserveSendCounters(slot: number, n: number): bigint {
    const count = BigInt(n);
    // Compare-and-swap, not Atomics.add: a used-up counter must never move on (and wrap around to reuse nonces).
    for (;;) {
      const first = Atomics.load(this.sendCounters, slot);
      if (first + count > LIMIT) return -1n;
      if (Atomics.compareExchange(this.sendCounters, slot, first, first + count) === first) return first;
    }
  }

  /**
   * Takes the slot's replay lock: the in-order consumer holds it while it checks a
   * batch's counters of this keypair (replayAccept on `replay` at replayBase(slot)).
   * Held for microseconds and contended only after a roam, so it spins.
   */
  lockReplay(slot: number): void {
    if (this.lockOwner === NO_REPLAY_LOCKS) throw new Error('this key table view takes no replay locks (attached with NO_REPLAY_LOCKS)');
    const lock = slot * META_WORDS + M_LOCK;
    while (Atomics.compareExchange(this.meta, lock, 0, this.lockOwner) !== 0);
  }

  /** Frees every replay lock a dead thread (its attach() owner number) was holding. */
  releaseReplayLocks(owner: number): void {
    for (let slot = 1; slot < this.capacity; slot++) Atomics.compareExchange(this.meta, slot * META_WORDS + M_LOCK, owner, 0);
  }

  unlockReplay(slot: number): void {
    Atomics.store(this.meta, slot * META_WORDS + M_LOCK, 0);
  }

  /** Where the slot's replay window starts in `replay`. */
  replayBase(slot: number): number {
    return slot * REPLAY_STATE_WORDS;
  }
}
