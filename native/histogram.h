// Histograms kept in a stats array (src/offload/histogram.ts reads them): counts, not
// cumulative, of observations <= 1, 2, 4, 8, 16, 32, 64 and above, then their sum.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tundra {

constexpr size_t kHistogramBuckets = 8;
constexpr size_t kHistogramEntries = kHistogramBuckets + 1;

inline void Observe(double* histogram, uint32_t value) {
  const size_t bucket = value <= 1 ? 0 : static_cast<size_t>(32 - __builtin_clz(value - 1));
  histogram[bucket < kHistogramBuckets - 1 ? bucket : kHistogramBuckets - 1]++;
  histogram[kHistogramBuckets] += value;
}

}  // namespace tundra
