// A NETLINK_ROUTE socket for the control plane: route and address change events,
// and route look-ups. Only the socket and its I/O; the messages are built and
// read in TypeScript (src/io/netlink.ts).
#pragma once

#include <napi.h>

namespace tundra::netlink {

// Adds netlinkOpen, netlinkSend and netlinkRecv to the addon's exports.
void Init(Napi::Env env, Napi::Object exports);

}  // namespace tundra::netlink
