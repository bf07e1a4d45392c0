// Transport keypairs (whitepaper §5.4.6) and the current/previous/next rotation
// of wireguard-go's noise-protocol.go. A keypair's keys, send counter and replay
// window live in its slot of the shared key table, where the data path reads them;
// this object is the control plane's handle on that slot.
import { REJECT_AFTER_TIME } from './constants.js';
import { KEY_SIZE } from '../crypto/sizes.js';
import { REPLAY_STATE_WORDS, ReplayWindow } from './replay.js';
import type { KeyTable } from './key-table.js';

export class Keypair {
  /** The key table slot its local index names. */
  readonly slot: number;
  /** Views of the slot's keys in the table. */
  readonly sendKey: Uint8Array;
  readonly receiveKey: Uint8Array;
  readonly replay: ReplayWindow;

  constructor(
    private readonly table: KeyTable,
    sendKey: Uint8Array,
    receiveKey: Uint8Array,
    readonly localIndex: number,
    readonly remoteIndex: number,
    readonly isInitiator: boolean,
    readonly createdAt: number,
  ) {
    const slot = table.install(localIndex, sendKey, receiveKey, remoteIndex, createdAt);
    this.slot = slot;
    this.sendKey = table.sendKeys.subarray(slot * KEY_SIZE, (slot + 1) * KEY_SIZE);
    this.receiveKey = table.receiveKeys.subarray(slot * KEY_SIZE, (slot + 1) * KEY_SIZE);
    this.replay = new ReplayWindow(table.replay.subarray(slot * REPLAY_STATE_WORDS, (slot + 1) * REPLAY_STATE_WORDS));
  }

  /** Send counters used so far. */
  get sendCounter(): bigint {
    return this.table.sendCounter(this.slot);
  }

  /**
   * Reserves `n` consecutive send counters and returns the first, or undefined when
   * the batch would reach REJECT_AFTER_MESSAGES (the keypair is then used up).
   */
  reserveSendCounters(n: number): bigint | undefined {
    const first = this.table.reserveSendCounters(this.slot, n);
    return first < 0n ? undefined : first;
  }

  isExpired(now: number): boolean {
    return now - this.createdAt >= REJECT_AFTER_TIME;
  }

  /** Frees the slot (zeroing the keys); called when the keypair is retired. */
  zero(): void {
    this.table.release(this.localIndex);
  }
}

/** Callback when a keypair leaves the set, so its index can be freed. */
export type KeypairRetired = (keypair: Keypair) => void;

/**
 * A peer's keypairs. The responder's new keypair waits in `next` until the initiator
 * proves it has it (its first transport message); only `current` is used to send.
 */
export class Keypairs {
  current: Keypair | undefined;
  previous: Keypair | undefined;
  next: Keypair | undefined;

  constructor(private readonly retired: KeypairRetired) {}

  /** Installs a keypair from a completed handshake (BeginSymmetricSession). */
  install(keypair: Keypair): void {
    const { previous, next, current } = this;
    if (keypair.isInitiator) {
      if (next !== undefined) {
        this.next = undefined;
        this.previous = next;
        this.retire(current);
      } else {
        this.previous = current;
      }
      this.retire(previous);
      this.current = keypair;
    } else {
      this.next = keypair;
      this.retire(next);
      this.previous = undefined;
      this.retire(previous);
    }
  }

  /**
   * A transport message opened with `keypair`. Returns true when that confirmed
   * `next`, which then becomes current: the responder's handshake is complete.
   */
  confirm(keypair: Keypair): boolean {
    if (this.next !== keypair) return false;
    this.retire(this.previous);
    this.previous = this.current;
    this.current = keypair;
    this.next = undefined;
    return true;
  }

  /** Drops every keypair (zeroing key material). */
  clear(): void {
    this.retire(this.current);
    this.retire(this.previous);
    this.retire(this.next);
    this.current = this.previous = this.next = undefined;
  }

  private retire(keypair: Keypair | undefined): void {
    if (keypair === undefined) return;
    keypair.zero();
    this.retired(keypair);
  }
}
