// Transport keypairs (whitepaper §5.4.6) and the current/previous/next rotation
// of wireguard-go's noise-protocol.go.
import { REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME } from './constants.js';
import { ReplayWindow } from './replay.js';

export class Keypair {
  /** Next counter to send; BigInt because it is touched once per batch, not per packet. */
  private nextSendCounter = 0n;
  readonly replay = new ReplayWindow();

  constructor(
    readonly sendKey: Uint8Array,
    readonly receiveKey: Uint8Array,
    readonly localIndex: number,
    readonly remoteIndex: number,
    readonly isInitiator: boolean,
    readonly createdAt: number,
  ) {}

  get sendCounter(): bigint {
    return this.nextSendCounter;
  }

  /**
   * Reserves `n` consecutive send counters and returns the first, or undefined when
   * the batch would reach REJECT_AFTER_MESSAGES (the keypair is then used up).
   */
  reserveSendCounters(n: number): bigint | undefined {
    const first = this.nextSendCounter;
    if (first + BigInt(n) > REJECT_AFTER_MESSAGES) return undefined;
    this.nextSendCounter = first + BigInt(n);
    return first;
  }

  isExpired(now: number): boolean {
    return now - this.createdAt >= REJECT_AFTER_TIME;
  }

  /** Overwrites the keys; called when the keypair is retired. */
  zero(): void {
    this.sendKey.fill(0);
    this.receiveKey.fill(0);
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
