// File descriptors the addon hands out (TUN queues, UDP sockets): closing them.
// Not TUN- or UDP-specific, so in a file of its own.
#pragma once

#include <napi.h>

namespace tundra::fd {

// Adds closeFd to the addon's exports.
void Init(Napi::Env env, Napi::Object exports);

}  // namespace tundra::fd
