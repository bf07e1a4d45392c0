// Worker module for bench/pool.bench.ts (piscina variant): seals one region of
// the shared arena in place. Everything lives in SharedArrayBuffers handed over
// once in workerData; a task carries only small numbers.
import { workerData } from 'piscina';
import { aeadBackend, type CryptoBackendName } from '../src/crypto/backends.js';

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
