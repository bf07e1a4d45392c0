#!/usr/bin/env bash
# demo.sh -- `npm run demo`: two namespaces, a tundra daemon in each, traffic across.
# Pings both ways over IPv4 and IPv6, runs a 3 s iperf3 TCP test a -> b, shows
# `wg show` of side a and a table of results, then removes everything it made.
# Exits non-zero if any check failed.
#
#   DAEMON='CMD %IF%'   daemon command template (default: this checkout's tundra),
#                       e.g. DAEMON='wireguard-go -f %IF%' bash scripts/demo.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TUNDRA_MAIN=$REPO/dist/src/cli/main.js
DAEMON=${DAEMON:-node $TUNDRA_MAIN -f %IF%}
# shellcheck source=scripts/lib/netns-pair.sh
source "$REPO/scripts/lib/netns-pair.sh"

ROWS=()
FAILED=0

die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
say() { printf '\n== %s\n' "$*"; }

check_prerequisites() {
  pair_check_host "$DAEMON" || die "cannot run here (see above)"
  if [[ $DAEMON == *"$TUNDRA_MAIN"* && ! -f $TUNDRA_MAIN ]]; then
    die "$TUNDRA_MAIN not found: run 'npm run build' first"
  fi
}

record() {  # check status detail
  ROWS+=("$(printf '%-20s %-5s %s' "$1" "$2" "$3")")
  [[ $2 == ok ]] || FAILED=1
}

check_ping() {  # side destination label
  local out loss rtt
  out=$(pair_exec "$1" ping -c 3 -i 0.2 -W 1 -q "$2" 2>&1) || true
  loss=$(awk '/packet loss/ { for (i = 1; i <= NF; i++) if ($i ~ /%$/) print $i }' <<<"$out")
  # "rtt min/avg/max/mdev = 0.4/0.5/0.7/0.1 ms": the 5th /-separated field is avg
  rtt=$(awk -F/ '/^rtt/ { print $5 }' <<<"$out")
  if [[ $loss == 0% ]]; then
    record "$3" ok "loss 0%, rtt avg $rtt ms"
  else
    record "$3" FAIL "loss ${loss:-?}${rtt:+, rtt avg $rtt ms}"
  fi
}

check_iperf3() {
  local json=$PAIR_TMP/iperf3-tcp.json mbps
  if ! pair_start_iperf3_server "$PAIR_TMP/iperf3-server.log"; then
    record "iperf3 tcp a->b" FAIL "server did not start"
    return
  fi
  pair_iperf3 "$json" 3 || true  # judged by its JSON below
  if mbps=$(jq -er '.end.sum_received.bits_per_second / 1e6 | . * 10 | round / 10' "$json" 2>/dev/null); then
    record "iperf3 tcp a->b" ok "$mbps Mbit/s (3 s)"
  else
    record "iperf3 tcp a->b" FAIL "$(jq -r '.error // empty' "$json" 2>/dev/null) $(head -c 200 "$json.err")"
  fi
}

check_daemon_cpu() {
  local cpu_a cpu_b
  if cpu_a=$(pair_cpu_seconds "$PAIR_PID_A") && cpu_b=$(pair_cpu_seconds "$PAIR_PID_B"); then
    record "daemon cpu" ok "a ${cpu_a} s, b ${cpu_b} s"
  else
    record "daemon cpu" FAIL "a daemon exited during the demo"
  fi
}

main() {
  check_prerequisites
  say "building the pair with: $DAEMON"
  pair_up "$DAEMON"

  if pair_wait_handshake 5; then
    record handshake ok ""
  else
    record handshake FAIL "none within 5 s"
  fi
  say "ping and iperf3 through the tunnel"
  check_ping a "$PAIR_V4_B" "ping v4 a->b"
  check_ping b "$PAIR_V4_A" "ping v4 b->a"
  check_ping a "$PAIR_V6_B" "ping v6 a->b"
  check_ping b "$PAIR_V6_A" "ping v6 b->a"
  check_iperf3
  check_daemon_cpu

  say "wg show $PAIR_IF_A (side a)"
  pair_exec a wg show "$PAIR_IF_A" || record "wg show" FAIL "UAPI get failed"

  say "results ($DAEMON)"
  printf '%-20s %-5s %s\n' check status detail
  printf '%s\n' "${ROWS[@]}"
  ((FAILED == 0)) || pair_show_logs

  pair_down
  say "removed the namespaces and stopped the daemons"
  return "$FAILED"
}

main "$@"
