#!/usr/bin/env bash
# rss.sh -- `sudo bench/rss.sh [SECS] [TEMPLATE]`: the resident memory of both daemons
# of a tunnel (scripts/lib/netns-pair.sh) before, during and after an iperf3 TCP
# transfer of SECS seconds (default 60), sampled every SECS/6 seconds from
# /proc/PID/status (VmRSS). A data path that allocates nothing per packet stays flat.
# TEMPLATE is the daemon command with %IF% (default: tundra with its defaults).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${1:-60}
TEMPLATE=${2:-node $REPO/dist/src/cli/main.js -f %IF%}
# shellcheck source=scripts/lib/netns-pair.sh
source "$REPO/scripts/lib/netns-pair.sh"

pair_check_host "$TEMPLATE" || exit 1
pair_up "$TEMPLATE"
pair_wait_handshake 10 || { pair_show_logs; exit 1; }
pair_start_iperf3_server "$PAIR_TMP/iperf3-server.log"

rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
sample() { echo "$1	$(rss "$PAIR_PID_A")	$(rss "$PAIR_PID_B")"; }

echo "when	a_rss_mib	b_rss_mib"
sample start
pair_iperf3_start "$PAIR_TMP/iperf3.json" "$SECS"
client=$PAIR_SPAWNED
step=$(( SECS / 6 > 0 ? SECS / 6 : 1 ))
for ((t = step; t < SECS; t += step)); do
  sleep "$step"
  sample "${t}s"
done
wait "$client" || true
sample end
jq -r '"transfer\t\(.end.sum_received.bits_per_second / 1e6 | floor) Mbit/s"' "$PAIR_TMP/iperf3.json"
