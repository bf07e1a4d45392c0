#!/bin/sh
# A WireGuard "implementation" that misbehaves, for the benchmark runner's tests:
#   bench-fake-impl.sh never IF   stays up without ever creating IF
#   bench-fake-impl.sh fail IF    says why on stderr and exits 4 at once
case $1 in
  never) exec sleep 600 ;;
  fail) echo "fake-impl: cannot open /dev/net/tun for $2" >&2; exit 4 ;;
  *) echo "usage: $0 never|fail IF" >&2; exit 2 ;;
esac
