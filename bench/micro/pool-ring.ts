// What bench/micro/pool.bench.ts and its ring-fed task (bench/micro/pool-task.ts, ringServe) share:
// the task's rings and the job kinds of a ring entry [region, count, kind].
import type { RingShared } from '../../src/pipeline/ring.js';

export interface RingTask {
  jobs: RingShared;
  done: RingShared;
  /** [0] = 1: return. */
  stop: Int32Array;
}
export const RING_EMPTY = 0;
export const RING_SEAL = 1;
