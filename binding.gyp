{
  "targets": [
    {
      "target_name": "tundra_native",
      "sources": ["native/addon.cc", "native/aead.cc", "native/fd.cc", "native/netlink.cc", "native/noise_crypto.cc", "native/offload.cc", "native/tun.cc", "native/udp.cc", "native/watch.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O3", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"]
    }
  ]
}
