// What a queue worker's stages hand the control plane, carried to the main thread
// over two SPSC rings in shared memory (no structured-clone message per batch):
//   tallies  — per keypair and batch: bytes sent or received, whether data came,
//              the last packet's source (small fixed records). The main thread
//              sleeps on this ring's doorbell, which the worker rings at most once
//              every TALLY_INTERVAL_MS while tallies come, not per batch: they feed
//              byte counts and timers of seconds, and waking it for each batch would
//              cost a thread wake-up per batch. An idle tunnel wakes nobody.
//   messages — what cannot wait: packets for a peer without a usable session, the
//              tallies the control plane must act on now (counters used up; data on
//              a keypair that is not yet the peer's sending one, which confirms it;
//              a source that is not the peer's endpoint, which roams it — the worker
//              has put it in the shared peer table already), and local addresses a
//              send found gone (sticky sources to forget). The main thread waits on
//              this ring with Atomics.waitAsync (a doorbell: a producer wakes it only
//              when it sleeps), and reads the tallies ring first, so that records
//              apply in the order they were made.
// The worker rings the messages' doorbell once its piece of work is done (ChannelWriter.ring,
// after the batch went out), not as it pushes: the wake-up is not on the packet's way.
// The tallies' doorbell it rings TALLY_INTERVAL_MS later, from a timer: rung at once, it
// would cost the worker a thread wake-up (tens of µs on a VM) between writing a packet
// to the TUN and reading the reply the kernel queued while it wrote.
// A record that finds its ring full is dropped and counted (control_ring_full): a
// lost tally costs a byte count, a lost message a packet that the peer resends.
// Handshake messages take a path of their own (handshake-lanes.ts), which a flood of
// them can fill without pushing any of these records out.
import { ADDR_STRIDE, sameAddr } from '../pipeline/address.js';
import type { PacketBatch } from '../pipeline/batch.js';
import type { PeerTable } from '../protocol/peer-table.js';
import { MAX_WORDS, SpscRing, type RingShared } from '../pipeline/ring.js';
import { Drop, type DropCounters } from '../protocol/drop-reasons.js';
import type { EngineControl } from '../stages/engine-control.js';
import { createHandshakeLanes, LaneWriter, type HandshakeGate, type HandshakeLanesShared } from './handshake-lanes.js';
import type { InboundControl } from '../stages/inbound.js';
import type { OutboundControl } from '../stages/outbound.js';

const SENT = 1;
const RECEIVED = 2;
const NEEDS_SESSION = 3;
const SOURCE_GONE = 4;

const ADDR_WORDS = ADDR_STRIDE / 4;
// Tally: [kind, peer, slot, generation, bytes, packets, flag, source address...].
// The flag of SENT: the counters ran out; of RECEIVED: these bits.
const DATA_CAME = 1;
const ROAMED = 2;
const TALLY_WORDS = 7 + ADDR_WORDS;
const T_ADDR = 7;
// Message: [kind, length, peer, 0, source address..., bytes...]: NEEDS_SESSION; SOURCE_GONE
// carries the address record whose local side failed, no bytes.
const MESSAGE_WORDS = MAX_WORDS;
const M_ADDR = 4;
const M_DATA = (M_ADDR + ADDR_WORDS) * 4;
/** Largest packet a message record holds; a longer one without a session is dropped (control_record_too_big). */
export const MESSAGE_MAX_BYTES = MESSAGE_WORDS * 4 - M_DATA;

/** How long a tally that can wait may wait before the worker wakes the main thread for it. */
export const TALLY_INTERVAL_MS = 20;
/** How long a doorbell wait lasts before the waiter looks again (it also ends on close). */
const DOORBELL_WAIT_MS = 1000;

export interface ControlChannelShared {
  readonly tallies: RingShared;
  readonly messages: RingShared;
  readonly handshakes: HandshakeLanesShared;
}

/** Makes the rings of one worker (main thread; post the result to the worker). */
export function createControlChannel(gate: HandshakeGate, tallies = 4096, messages = 256): ControlChannelShared {
  return {
    tallies: new SpscRing(tallies, TALLY_WORDS).share(), messages: new SpscRing(messages, MESSAGE_WORDS).share(),
    handshakes: createHandshakeLanes(gate),
  };
}

class Record {
  readonly words: Uint32Array;
  readonly bytes: Uint8Array;
  constructor(size: number) {
    this.words = new Uint32Array(size);
    this.bytes = new Uint8Array(this.words.buffer);
  }
}

/** The worker's end: the stages' control interface, writing records. */
export class ChannelWriter implements OutboundControl, InboundControl {
  private readonly tallies: SpscRing;
  private readonly messages: SpscRing;
  private readonly tally = new Record(TALLY_WORDS);
  private readonly message = new Record(MESSAGE_WORDS);
  private readonly lanes: LaneWriter;
  /** Rings the tallies' doorbell (made on first use, re-armed with refresh()). */
  private tallyBell: NodeJS.Timeout | undefined;
  private tallyBellArmed = false;

  /** `now`: the control plane's clock. */
  constructor(shared: ControlChannelShared, private readonly peers: PeerTable, private readonly drops: DropCounters, now: () => number) {
    this.tallies = SpscRing.attach(shared.tallies, { deferWake: true });
    this.messages = SpscRing.attach(shared.messages, { deferWake: true });
    this.lanes = new LaneWriter(shared.handshakes, drops, now);
  }

  /**
   * After each piece of work (the queue loop's afterWork): wakes the main thread if it
   * sleeps and messages came; if tallies came, arms the timer that wakes it for them.
   */
  ring(): void {
    this.messages.wakeConsumer();
    if (this.tallyBellArmed || !this.tallies.wakeDue) return;
    this.tallyBellArmed = true;
    if (this.tallyBell === undefined) this.tallyBell = setTimeout(() => this.ringTallies(), TALLY_INTERVAL_MS).unref();
    else this.tallyBell.refresh();
  }

  private ringTallies(): void {
    this.tallyBellArmed = false;
    this.tallies.wakeConsumer();
  }

  needsSession(peer: number, data: Uint8Array, offset: number, length: number): void {
    if (length > MESSAGE_MAX_BYTES) {
      this.drops.add(Drop.ControlRecordTooBig);
      return;
    }
    const w = this.message.words;
    w[0] = NEEDS_SESSION;
    w[1] = length;
    w[2] = peer;
    this.message.bytes.set(data.subarray(offset, offset + length), M_DATA);
    if (!this.messages.tryPush(w)) this.drops.add(Drop.ControlRingFull);
  }

  sent(peer: number, slot: number, generation: number, bytes: number, packets: number, exhausted: boolean): void {
    this.pushTally(exhausted, SENT, peer, slot, generation, bytes, packets, exhausted ? 1 : 0);
  }

  /**
   * A send from the local side of record `i` failed: the control plane forgets that address (see EngineControl.sourceGone).
   * Bounds: i < the sending batch's count ≤ its slots, and addrs holds slots × ADDR_STRIDE bytes (PacketBatch's constructor);
   * the message record has MESSAGE_WORDS = MAX_WORDS words, past M_ADDR + ADDR_WORDS.
   */
  sourceGone(addrs: Uint8Array, i: number): void {
    const w = this.message.words;
    w[0] = SOURCE_GONE;
    w[1] = 0;
    w[2] = 0;
    w[3] = 0;
    const to = this.message.bytes;
    for (let k = 0, from = i * ADDR_STRIDE; k < ADDR_STRIDE; k++) to[M_ADDR * 4 + k] = addrs[from + k]!;
    if (!this.messages.tryPush(w)) this.drops.add(Drop.ControlRingFull);
  }

  handshakes(batch: PacketBatch, indices: Int32Array, count: number): void {
    this.lanes.handshakes(batch, indices, count);
  }

  // Bounds: lastPacket < batch.count ≤ batch.slots, and batch.addrs holds slots × ADDR_STRIDE bytes (PacketBatch's constructor);
  // both records reach past T_ADDR + ADDR_WORDS words (TALLY_WORDS, MESSAGE_WORDS).
  received(peer: number, slot: number, generation: number, bytes: number, packets: number, dataCame: boolean, batch: PacketBatch, lastPacket: number): void {
    const peers = this.peers;
    const roamed = !peers.hasEndpoint(peer) || !sameAddr(peers.endpoints, peer, batch.addrs, lastPacket);
    // The new source is the endpoint before anything else is sent, from this queue or
    // another (as wireguard-go sets it in its receive path); the control plane hears of it after.
    if (roamed) peers.learnEndpoint(peer, batch.addrs, lastPacket);
    const urgent = roamed || peers.sendSlot(peer) !== slot;
    const to = (urgent ? this.message : this.tally).bytes;
    // Copied byte by byte: a subarray here would allocate on every batch.
    for (let k = 0, from = lastPacket * ADDR_STRIDE; k < ADDR_STRIDE; k++) to[T_ADDR * 4 + k] = batch.addrs[from + k]!;
    this.pushTally(urgent, RECEIVED, peer, slot, generation, bytes, packets, (dataCame ? DATA_CAME : 0) | (roamed ? ROAMED : 0));
  }

  /** A tally the control plane must act on now goes with the messages (and rings the doorbell). */
  private pushTally(urgent: boolean, kind: number, peer: number, slot: number, generation: number, bytes: number, packets: number, flag: number): void {
    const w = urgent ? this.message.words : this.tally.words;
    w[0] = kind;
    w[1] = peer;
    w[2] = slot;
    w[3] = generation;
    w[4] = bytes;
    w[5] = packets;
    w[6] = flag;
    if (!(urgent ? this.messages : this.tallies).tryPush(w)) this.drops.add(Drop.ControlRingFull);
  }
}

/** The main thread's end: applies the records to the engine, woken by each ring's doorbell. */
export class ChannelReader {
  private readonly tallies: SpscRing;
  private readonly messages: SpscRing;
  private readonly tally = new Record(TALLY_WORDS);
  private readonly message = new Record(MESSAGE_WORDS);
  // The source address of a tally in each record, as views made once (not per tally).
  private readonly tallyAddr = this.tally.bytes.subarray(T_ADDR * 4);
  private readonly urgentAddr = this.message.bytes.subarray(T_ADDR * 4);
  // A message's address record (SOURCE_GONE).
  private readonly messageAddr = this.message.bytes.subarray(M_ADDR * 4);
  private closed = false;

  constructor(shared: ControlChannelShared, private readonly control: EngineControl, private readonly afterWork: () => void) {
    this.tallies = SpscRing.attach(shared.tallies);
    this.messages = SpscRing.attach(shared.messages);
    void this.serveTallies();
    void this.serveMessages();
  }

  /** Records waiting in each ring now (for the metrics). */
  get queued(): { tallies: number; messages: number } {
    return { tallies: this.tallies.size, messages: this.messages.size };
  }

  close(): void {
    this.closed = true;
    this.tallies.close();
    this.messages.close();
  }

  /**
   * Applies the tallies, then sleeps until the worker rings for more. The worker rings
   * TALLY_INTERVAL_MS after a tally, from a timer, so while tallies keep coming this is
   * one wake-up per interval; a sparse packet's tally costs one (not a second turn of
   * an interval that finds nothing).
   */
  private async serveTallies(): Promise<void> {
    while (!this.closed) {
      if (this.drainTallies()) this.afterWork();
      await this.tallies.waitNotEmptyAsync(DOORBELL_WAIT_MS);
    }
  }

  private async serveMessages(): Promise<void> {
    while (!this.closed) {
      if (this.messages.size > 0) {
        this.drainTallies();
        this.drainMessages();
        this.afterWork();
      }
      await this.messages.waitNotEmptyAsync(DOORBELL_WAIT_MS);
    }
  }

  /** Applies the waiting tallies; whether there were any. */
  private drainTallies(): boolean {
    const { words } = this.tally;
    let any = false;
    while (this.tallies.tryPop(words)) {
      any = true;
      this.apply(words, this.tallyAddr);
    }
    return any;
  }

  /** A tally, its source address in `addr`. Bounds: words is a record of TALLY_WORDS or MESSAGE_WORDS words, both > 6. */
  private apply(words: Uint32Array, addr: Uint8Array): void {
    if (words[0] === SENT) this.control.sent(words[1]!, words[2]!, words[3]!, words[4]!, words[5]!, words[6] === 1);
    else this.control.receivedFrom(words[1]!, words[2]!, words[3]!, words[4]!, words[5]!, (words[6]! & DATA_CAME) !== 0, addr, 0, (words[6]! & ROAMED) !== 0);
  }

  // Bounds: words is the message record, MESSAGE_WORDS = MAX_WORDS > 2 words.
  private drainMessages(): void {
    const { words, bytes } = this.message;
    while (this.messages.tryPop(words)) {
      const kind = words[0]!;
      const length = words[1]!;
      if (kind === SENT || kind === RECEIVED) this.apply(words, this.urgentAddr);
      else if (kind === NEEDS_SESSION) this.control.needsSession(words[2]!, bytes, M_DATA, length);
      else if (kind === SOURCE_GONE) this.control.sourceGone(this.messageAddr, 0);
    }
  }
}
