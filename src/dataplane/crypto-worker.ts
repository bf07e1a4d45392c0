// A crypto pool worker's task (piscina runs it once per thread, and again if it
// fails): take jobs from the ring, seal or open the flight they name in place through
// the batch AEAD, hand the flight back to its queue. It returns only when the pool
// stops. The job in hand is written to the status words first, so that the pool can
// hand it back as lost if this task dies with it (cleared only after the completion
// is pushed: a duplicate is harmless, a stranded flight would not be).
import { workerData } from 'piscina';
import { aeadBackend } from '../crypto/backends.js';
import { KeyTable, NO_REPLAY_LOCKS } from '../protocol/key-table.js';
import { MpmcRing } from '../pipeline/ring.js';
import { InboundStage } from '../stages/inbound.js';
import { OutboundStage } from '../stages/outbound.js';
import { DONE_LOST, JOB_EPOCH, JOB_FLIGHT, JOB_QUEUE, JOB_USE, JOB_WORDS } from './flights.js';
import { setThreadNice } from './priority.js';
import { POOL_POLL_MS, STATUS_STOP, statusAt, type CryptoPoolShared, type CryptoTask } from './crypto-pool.js';

const shared = workerData as CryptoPoolShared;
setThreadNice(shared.nice);
const aead = aeadBackend(shared.crypto);
const ctx = { keys: KeyTable.attach(shared.keys, NO_REPLAY_LOCKS), seal: aead.seal, open: aead.open };
const status = new Int32Array(shared.status);
const jobs = MpmcRing.attach(shared.jobs);
const done = shared.done.map((d) => MpmcRing.attach(d));
// One stage view per flight, over the flight's scratch: made once per thread.
const flights = shared.flights.map((f) => ({
  data: f.batch.data,
  stage: f.direction === 'outbound' ? new OutboundStage(shared.slots, f.scratch) : new InboundStage(shared.slots, f.scratch),
}));

// Bounds: entry has JOB_WORDS words, past every JOB_* and DONE_* field; a job's flight and queue are checked against flights and done.
export default function serve({ task }: CryptoTask): number {
  const entry = new Uint32Array(JOB_WORDS);
  const at = statusAt(task);
  let served = 0;
  while (Atomics.load(status, STATUS_STOP) === 0) {
    if (!jobs.popWait(entry, 0, POOL_POLL_MS)) continue;
    const id = entry[JOB_FLIGHT]!;
    const queue = entry[JOB_QUEUE]!;
    const flight = flights[id];
    const completions = done[queue];
    if (flight === undefined || completions === undefined) {
      throw new RangeError(`crypto job for flight ${id} of queue ${queue}: the pool has ${flights.length} flights and ${done.length} queues`);
    }
    Atomics.store(status, at + 1, entry[JOB_EPOCH]!);
    Atomics.store(status, at + 2, queue);
    Atomics.store(status, at + 3, entry[JOB_USE]!);
    Atomics.store(status, at, id + 1);
    if (flight.stage instanceof OutboundStage) flight.stage.seal(flight.data, ctx);
    else flight.stage.open(flight.data, ctx);
    entry[DONE_LOST] = 0;
    completions.tryPush(entry); // room for every flight: cannot fail
    Atomics.store(status, at, 0);
    served++;
  }
  return served;
}
