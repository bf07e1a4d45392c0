// Flights: batches in flight between a queue worker and the crypto pool. A flight is a
// batch and the scratch of the stage that works on it, both in shared memory made by
// the main thread, so that they outlive a queue worker that dies. Rings carry small
// entries that name a flight, never the packets.
import { BATCH_SIZE, PacketBatch, SLOT_SIZE, type PacketBatchViews } from '../pipeline/batch.js';
import type { RingShared } from '../pipeline/ring.js';
import { InboundStage } from '../stages/inbound.js';
import { OutboundStage } from '../stages/outbound.js';

/** Flights per direction with a crypto pool: 4 × 128 packets of a keypair at most, far below the replay window. */
export const POOL_FLIGHTS = 4;

/**
 * Ring entries: a job [flight, epoch, queue, use]; a completion [flight, epoch, lost, use].
 * `epoch` names the queue worker's incarnation, `use` the flight's use by it: a
 * completion that matches neither is stale (its worker died) and is only freed.
 */
export const JOB_WORDS = 4;
export const JOB_FLIGHT = 0;
export const JOB_EPOCH = 1;
export const JOB_QUEUE = 2;
export const DONE_LOST = 2;
export const JOB_USE = 3;

/** One flight as shared memory: made by the main thread, so it outlives a worker. */
export interface FlightViews {
  /** Its index among the crypto pool's flights. */
  readonly id: number;
  readonly direction: 'outbound' | 'inbound';
  readonly batch: PacketBatchViews;
  readonly scratch: SharedArrayBuffer;
}

/** A queue's flights and what tells a restarted worker which are still out in the pool. */
export interface QueueFlightsShared {
  readonly outbound: readonly FlightViews[];
  readonly inbound: readonly FlightViews[];
  /** Per flight id: 1 while it is out in the pool. */
  readonly out: Int32Array;
  /** [0]: the incarnation of the queue's worker, bumped by each. */
  readonly epoch: Int32Array;
}

/** Makes the flights of a queue, their ids from `firstId` on. */
export function createQueueFlights(firstId: number, perDirection: number, flightIds: number): QueueFlightsShared {
  const make = (k: number, direction: FlightViews['direction'], scratch: SharedArrayBuffer): FlightViews => {
    const b = new PacketBatch(BATCH_SIZE, SLOT_SIZE);
    return { id: firstId + k, direction, batch: { data: b.data, offsets: b.offsets, lengths: b.lengths, addrs: b.addrs, header: b.header }, scratch };
  };
  const outbound = Array.from({ length: perDirection }, (_, k) => make(k, 'outbound', new OutboundStage(BATCH_SIZE).scratch));
  const inbound = Array.from({ length: perDirection }, (_, k) => make(perDirection + k, 'inbound', new InboundStage(BATCH_SIZE).scratch));
  return {
    outbound, inbound,
    out: new Int32Array(new SharedArrayBuffer(4 * flightIds)),
    epoch: new Int32Array(new SharedArrayBuffer(4)),
  };
}

/** The crypto pool's side as a queue sees it. */
export interface QueuePool {
  readonly jobs: RingShared;
  /** This queue's completion ring. */
  readonly done: RingShared;
  readonly queue: number;
}
