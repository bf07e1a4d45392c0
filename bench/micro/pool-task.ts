// Worker module for bench/micro/pool.bench.ts (both variants): seals one region of
// the shared arena in place. Everything lives in SharedArrayBuffers handed over
// once in workerData; a task carries only small numbers.
import { workerData } from 'piscina';
import { aeadBackend, type CryptoBackendName } from '../../src/crypto/backends.js';
import { MpmcRing } from '../../src/pipeline/ring.js';
import { RING_SEAL, type RingTask } from './pool-ring.js';

/** What pool.bench.ts puts in workerData (SharedArrayBuffers are shared, not copied). */
export interface ArenaShared {
  /** Packet bytes: `regions` regions of `regionBytes` each. */
  data: SharedArrayBuffer;
  /** 32-byte keys back to back. */
  keys: SharedArrayBuffer;
  /** Uint32 descriptors: `rowsPerRegion` rows of DESC_STRIDE per region, offsets relative to the region. */
  desc: SharedArrayBuffer;
  regions: number;
  regionBytes: number;
  rowsPerRegion: number;
  descStride: number;
  backend: CryptoBackendName;
}

/** A task: which region to seal and how many of its packets. */
export interface SealTask {
  region: number;
  count: number;
}

const shared = workerData as ArenaShared;
const { seal } = aeadBackend(shared.backend);
const keys = new Uint8Array(shared.keys);
// Views made once per worker, so a task allocates nothing but its own message.
const regionData: Uint8Array[] = [];
const regionDesc: Uint32Array[] = [];
for (let r = 0; r < shared.regions; r++) {
  regionData.push(new Uint8Array(shared.data, r * shared.regionBytes, shared.regionBytes));
  const rowWords = shared.rowsPerRegion * shared.descStride;
  regionDesc.push(new Uint32Array(shared.desc, r * rowWords * 4, rowWords));
}

/** The dispatch round trip alone: no work. */
export function empty(task: SealTask): number {
  return task.count;
}

/** Seals `count` packets of region `region` in place; returns the number sealed. */
export function sealRegion(task: SealTask): number {
  return seal(regionData[task.region]!, keys, regionDesc[task.region]!, task.count);
}

export default sealRegion;

// ---- the ring-fed variant: one long-lived task per thread --------------------------
// As src/dataplane/crypto-worker.ts does for the data path: piscina starts the thread and
// runs ringServe once; it takes [region, count, kind] from the jobs ring until told to
// stop and answers [region, result] on the done ring. No message per batch.

export function ringServe(task: RingTask): number {
  const jobs = MpmcRing.attach(task.jobs);
  const done = MpmcRing.attach(task.done);
  const entry = new Uint32Array(3);
  let served = 0;
  while (Atomics.load(task.stop, 0) === 0) {
    if (!jobs.popWait(entry, 0, 100)) continue;
    const [region, count, kind] = entry as unknown as [number, number, number];
    entry[1] = kind === RING_SEAL ? sealRegion({ region, count }) : count;
    done.pushWait(entry, 0, Infinity);
    served++;
  }
  return served;
}
