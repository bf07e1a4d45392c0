// Loss, reordering and duplicates of a stream of sequence-numbered datagrams, as the
// UDP load generator's receiver counts them: pure, and allocation-free per datagram
// (it runs once per datagram at several Gbit/s).

/**
 * Counts what arrived against what must have been sent: every number below the highest
 * seen was sent. A gap is lost until (if ever) it fills in; a number that arrives below
 * the highest is reordered, or a duplicate when it was seen already. Duplicates are told
 * apart only within the last `windowBits` numbers: an older arrival is taken as late.
 */
export class SequenceTracker {
  /** One bit per sequence number, modulo the window: a ring, cleared as it moves on. */
  private readonly seen: Uint8Array;
  private readonly window: number;
  private _received = 0;
  private _lost = 0;
  private _reordered = 0;
  private _duplicates = 0;
  private _highest = -1;

  constructor(windowBits = 1 << 20) {
    if (!Number.isInteger(windowBits) || windowBits < 8 || windowBits % 8 !== 0) {
      throw new RangeError(`SequenceTracker: windowBits ${windowBits} is not a positive multiple of 8`);
    }
    this.window = windowBits;
    this.seen = new Uint8Array(windowBits / 8);
  }

  /** Datagrams accounted, duplicates included. */
  get received(): number { return this._received; }
  /** Numbers below the highest seen that never arrived (a late arrival repays one). */
  get lost(): number { return this._lost; }
  /** Arrivals below the highest seen that were not duplicates. */
  get reordered(): number { return this._reordered; }
  get duplicates(): number { return this._duplicates; }
  /** The highest number seen; -1 before any. */
  get highest(): number { return this._highest; }

  account(seq: number): void {
    this._received++;
    const highest = this._highest;
    if (seq > highest) {
      this._lost += seq - highest - 1;
      if (seq - highest >= this.window) this.seen.fill(0);
      else for (let s = highest + 1; s < seq; s++) this.mark(s, false);
      this.mark(seq, true);
      this._highest = seq;
      return;
    }
    if (highest - seq < this.window) {
      if (this.isSeen(seq)) {
        this._duplicates++;
        return;
      }
      this.mark(seq, true);
    }
    this._reordered++;
    this._lost--;
  }

  private byteOf(seq: number): number {
    return Math.floor(seq / 8) % this.seen.length;
  }

  private isSeen(seq: number): boolean {
    return (this.seen[this.byteOf(seq)]! & (1 << (seq % 8))) !== 0;
  }

  private mark(seq: number, on: boolean): void {
    const at = this.byteOf(seq); // < seen.length: byteOf takes it modulo the length
    const bit = 1 << (seq % 8);
    this.seen[at] = on ? this.seen[at]! | bit : this.seen[at]! & ~bit;
  }
}
