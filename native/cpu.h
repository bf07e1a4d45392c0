// What this CPU can run, read once at load: a vector loop compiled for AVX2
// (target("avx2")) is called only where this says so, the portable one elsewhere.
#pragma once

namespace tundra::cpu {

inline const bool kHasAvx2 = [] {
  __builtin_cpu_init();  // before __builtin_cpu_supports during static initialization
  return __builtin_cpu_supports("avx2") != 0;
}();

}  // namespace tundra::cpu
