// Counting into a stats-array histogram (src/offload/histogram.ts has the layout) as
// native/offload.h's Observe() does, for the coalesce twin's stats.
import { HISTOGRAM_BOUNDS } from '../../src/offload/histogram.js';

/** Counts `value` into the histogram at `at` of `stats` (the TypeScript twin of Observe()). */
export function observe(stats: Float64Array, at: number, value: number): void {
  const bucket = value <= 1 ? 0 : 32 - Math.clz32(value - 1);
  stats[at + Math.min(bucket, HISTOGRAM_BOUNDS.length)]! += 1;
  stats[at + HISTOGRAM_BOUNDS.length + 1]! += value;
}
