#include "offload.h"

namespace tundra::offload {

void Init(Napi::Env, Napi::Object) {}

}  // namespace tundra::offload
