// Receive replay window: the RFC 6479 sliding bitmap of wireguard-go's replay.Filter.
// A ring of 128 blocks of 64 bits; the block holding the newest counter is only
// partly valid, so the window reaches back REPLAY_WINDOW_SIZE = 127 × 64 counters.
//
// This runs for every received packet, so counters come in as two uint32 halves
// (no BigInt, no allocation) and all state lives in one Uint32Array that can sit
// in a SharedArrayBuffer.

import { REJECT_AFTER_MESSAGES, REPLAY_WINDOW_SIZE } from './constants.js';

const RING_BLOCKS = 128;
const BLOCK_MASK = RING_BLOCKS - 1;
/** Words before the ring: the last accepted counter, low half then high half. */
const RING_OFFSET = 2;
/** Uint32 words of state: the last counter, then each 64-bit block as (low word, high word). */
export const REPLAY_STATE_WORDS = RING_OFFSET + RING_BLOCKS * 2;

const TWO_POW_32 = 2 ** 32;
/** Blocks per increment of the high half: 2^32 / 64. */
const BLOCKS_PER_HI = 2 ** 26;
const LIMIT_HI = Number(REJECT_AFTER_MESSAGES >> 32n);
const LIMIT_LO = Number(REJECT_AFTER_MESSAGES & 0xffff_ffffn);

export class ReplayWindow {
  /** The whole state; it may be a SharedArrayBuffer view, but accept() must never run on it from two threads at once. */
  readonly state: Uint32Array;

  /** With `state`, the window works on it as is (all zeros is an empty window). */
  constructor(state?: Uint32Array) {
    if (state !== undefined && state.length !== REPLAY_STATE_WORDS) {
      throw new RangeError(`replay state must be ${REPLAY_STATE_WORDS} words, got ${state.length}`);
    }
    this.state = state ?? new Uint32Array(REPLAY_STATE_WORDS);
  }

  reset(): void {
    this.state.fill(0);
  }

  /**
   * Checks the 64-bit counter `counterHi · 2^32 + counterLo` (both uint32) and marks it seen.
   * True if it is fresh; false if replayed, behind the window, or ≥ REJECT_AFTER_MESSAGES.
   */
  accept(counterLo: number, counterHi: number): boolean {
    return replayAccept(this.state, 0, counterLo, counterHi);
  }
}

/**
 * {@link ReplayWindow.accept} on a window stored at `state[base, base + REPLAY_STATE_WORDS)`,
 * so a table of windows (the shared key table) needs no object per window.
 * Bounds: every index is base + a word < REPLAY_STATE_WORDS (blocks masked by BLOCK_MASK), and
 * base + REPLAY_STATE_WORDS ≤ state.length: ReplayWindow's constructor checks the length (base 0),
 * KeyTable.replayBase(slot) is slot × REPLAY_STATE_WORDS for a slot below the capacity its replay array holds.
 */
export function replayAccept(state: Uint32Array, base: number, counterLo: number, counterHi: number): boolean {
  if (counterHi > LIMIT_HI || (counterHi === LIMIT_HI && counterLo >= LIMIT_LO)) return false;

  const lastLo = state[base]!;
  const lastHi = state[base + 1]!;

  if (counterHi > lastHi || (counterHi === lastHi && counterLo > lastLo)) {
    // Move the window forward, clearing the blocks it enters (at most the whole ring).
    // A high-half difference ≥ 2 is ≥ 2^27 blocks; below that the block difference is exact.
    const hiDiff = counterHi - lastHi;
    const blocksAhead = hiDiff >= 2
      ? RING_BLOCKS
      : Math.min(hiDiff * BLOCKS_PER_HI + (counterLo >>> 6) - (lastLo >>> 6), RING_BLOCKS);
    let block = (lastLo >>> 6) & BLOCK_MASK;
    for (let i = 0; i < blocksAhead; i++) {
      block = (block + 1) & BLOCK_MASK;
      state[base + RING_OFFSET + 2 * block] = 0;
      state[base + RING_OFFSET + 2 * block + 1] = 0;
    }
    state[base] = counterLo;
    state[base + 1] = counterHi;
  } else {
    // Behind the window when last − counter > REPLAY_WINDOW_SIZE; exact once hiDiff ≤ 1.
    const hiDiff = lastHi - counterHi;
    if (hiDiff >= 2 || hiDiff * TWO_POW_32 + lastLo - counterLo > REPLAY_WINDOW_SIZE) return false;
  }

  // The block index mod 128 and the bit depend only on the low half (bits 6..12 and 0..5).
  const bit = counterLo & 63;
  const word = base + RING_OFFSET + 2 * ((counterLo >>> 6) & BLOCK_MASK) + (bit >>> 5);
  const mask = 1 << (bit & 31);
  const old = state[word]!;
  if ((old & mask) !== 0) return false;
  state[word] = old | mask;
  return true;
}
