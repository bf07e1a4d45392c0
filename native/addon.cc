// Entry point of the tundra_native addon. NODE_API_MODULE registers a
// context-aware module, so it loads on the main thread and in worker threads;
// each part adds its exports here.
#include <napi.h>

#include "aead.h"
#include "fd.h"
#include "netlink.h"
#include "noise_crypto.h"
#include "offload.h"
#include "tun.h"
#include "udp.h"
#include "watch.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  tundra::aead::Init(env, exports);
  tundra::fd::Init(env, exports);
  tundra::netlink::Init(env, exports);
  tundra::noise_crypto::Init(env, exports);
  tundra::offload::Init(env, exports);
  tundra::tun::Init(env, exports);
  tundra::udp::Init(env, exports);
  tundra::watch::Init(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(tundra_native, Init)
