// Histograms kept in a stats array (Float64), as native/offload.h's Observe() keeps
// them: the counts of observations <= 1, 2, 4, … 64 and above (not cumulative),
// then their sum. Named `<name>_bucket_<le>` … `<name>_bucket_inf`, `<name>_sum`,
// so a stats-name list says where each histogram is.

/** The upper bounds of the buckets; one more bucket takes everything above. */
export const HISTOGRAM_BOUNDS = [1, 2, 4, 8, 16, 32, 64] as const;

export function histogramNames(name: string): string[] {
  return [...HISTOGRAM_BOUNDS.map((le) => `${name}_bucket_${le}`), `${name}_bucket_inf`, `${name}_sum`];
}

/** A histogram read out of a stats array: per-bucket counts (not cumulative), the count and the sum. */
export interface HistogramValue {
  readonly buckets: readonly number[];
  readonly count: number;
  readonly sum: number;
}

/** Whether a stats name belongs to a histogram (those are reported apart from the counters). */
export function isHistogramEntry(name: string): boolean {
  return /_bucket_(\d+|inf)$|_sum$/.test(name);
}

/**
 * Every histogram found in `names`, read from `values` (names[i] ↔ values[at + i]).
 * Bounds: a histogram's buckets and sum, at + i + HISTOGRAM_BOUNDS.length + 1, lie inside values: checked per histogram.
 */
export function readHistograms(names: readonly string[], values: ArrayLike<number>, at = 0): Record<string, HistogramValue> {
  const out: Record<string, HistogramValue> = {};
  for (const [i, name] of names.entries()) {
    if (!name.endsWith('_bucket_1')) continue;
    const base = name.slice(0, -'_bucket_1'.length);
    if (at + i + HISTOGRAM_BOUNDS.length + 1 >= values.length) throw new RangeError(`histogram ${base} runs past the ${values.length} stats values`);
    const buckets: number[] = [];
    for (let b = 0; b <= HISTOGRAM_BOUNDS.length; b++) buckets.push(values[at + i + b]!);
    out[base] = { buckets, count: buckets.reduce((a, b) => a + b, 0), sum: values[at + i + HISTOGRAM_BOUNDS.length + 1]! };
  }
  return out;
}
