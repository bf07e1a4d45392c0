// A crypto pool task for the pool's fault test. The first run, on whichever thread,
// that removes the file named by TUNDRA_TEST_FAIL_ONCE takes one job, records it as
// in hand (as the real task does) and throws, as a task that dies mid-batch would;
// every other run is the real task. (The file makes it once per pool, not per thread.)
import { unlinkSync } from 'node:fs';
import { workerData } from 'piscina';
import { MpmcRing } from '../../src/pipeline/ring.js';
import serve from '../../src/dataplane/crypto-worker.js';
import { JOB_EPOCH, JOB_FLIGHT, JOB_QUEUE, JOB_USE, JOB_WORDS } from '../../src/dataplane/flights.js';
import { statusAt, type CryptoPoolShared, type CryptoTask } from '../../src/dataplane/crypto-pool.js';

const shared = workerData as CryptoPoolShared;

function firstToFail(): boolean {
  try {
    unlinkSync(process.env.TUNDRA_TEST_FAIL_ONCE ?? '');
    return true;
  } catch {
    return false;
  }
}

export default function failOnce(task: CryptoTask): number {
  if (!firstToFail()) return serve(task);
  const entry = new Uint32Array(JOB_WORDS);
  if (!MpmcRing.attach(shared.jobs).popWait(entry, 0, 10_000)) throw new Error('no job came');
  const status = new Int32Array(shared.status);
  const at = statusAt(task.task);
  Atomics.store(status, at + 1, entry[JOB_EPOCH]!);
  Atomics.store(status, at + 2, entry[JOB_QUEUE]!);
  Atomics.store(status, at + 3, entry[JOB_USE]!);
  Atomics.store(status, at, entry[JOB_FLIGHT]! + 1);
  throw new Error('injected failure with a batch in hand');
}
