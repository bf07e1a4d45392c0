// A fake of the few N-API functions the addon's argument checks call, so the
// fuzzers can run them outside node: a napi_value is a FakeValue made here, a
// thrown error is remembered (Thrown) instead of reaching JavaScript. Only the
// paths the checks take are real; the rest of the addon's calls answer
// napi_generic_failure, which its glue never reaches in a fuzzer.
#pragma once

#include <napi.h>

#include <cstddef>
#include <string>
#include <vector>

namespace fake {

// What a check threw: the error class and its message.
struct Thrown {
  bool pending = false;
  std::string kind;  // "Error", "TypeError", "RangeError"
  std::string message;
};

napi_env Env();
void Reset();                         // forgets every value and the pending error
const Thrown& Exception();            // the pending error, if any
napi_value Undefined();
napi_value Number(double v);
napi_value Boolean(bool v);
napi_value String(const std::string& s);
// A typed array of `length` elements over data (not copied, not owned).
napi_value TypedArray(napi_typedarray_type type, void* data, size_t length);
// The CallbackInfo of a call with these arguments.
napi_callback_info Call(const std::vector<napi_value>& args);

}  // namespace fake
