// Segmentation offloads: virtio_net_hdr parsing, GSO split (TUN read side),
// GRO coalesce (TUN write side) and Internet checksums. Pure functions over
// buffers: no system calls, no policy.
#pragma once

#include <napi.h>

namespace tundra::offload {

// Adds offloadSplit, offloadCoalesce and the offload constants.
void Init(Napi::Env env, Napi::Object exports);

}  // namespace tundra::offload
