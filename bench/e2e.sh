#!/usr/bin/env bash
# e2e.sh -- `npm run bench:e2e`: tundra against Debian's wireguard-go, end to end.
# For each implementation in turn: build the namespace pair of
# scripts/lib/netns-pair.sh, run iperf3 a -> b through the tunnel (TCP, one
# stream; then UDP -b 0 -l 1380), each for SECS, measure the CPU both daemons
# used, tear the pair down. Then print both side by side with the ratio
# tundra / wireguard-go and write DIR/summary.tsv.
#
# Usage: bench/e2e.sh [-t SECS] [-o DIR] [-c 'CMD %IF%'] [-w 'CMD %IF%'] [-s]
#   -t SECS   length of each iperf3 test (default 10)
#   -o DIR    output directory (default ./bench-out/<timestamp>)
#   -c CMD    tundra daemon template (default: node <repo>/dist/src/cli/main.js -f %IF%)
#   -w CMD    reference daemon template (default: wireguard-go -f %IF%)
#   -s        skip the reference
#
# Mbit/s and UDP loss are the iperf3 receiver's. ns/byte is the CPU time
# (utime+stime) both daemons spent during a test divided by the bytes the
# receiver got: daemon CPU per byte that made it through.
# DIR also keeps meta.txt and, per implementation, the iperf3 JSON, the daemon
# logs and `wg show`. Exit status: 0 if every measurement ran, 1 otherwise.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TUNDRA_MAIN=$REPO/dist/src/cli/main.js
# shellcheck source=scripts/lib/netns-pair.sh
source "$REPO/scripts/lib/netns-pair.sh"

SECS=10
OUT=./bench-out/$(date +%Y%m%d-%H%M%S)
TUNDRA_CMD="node $TUNDRA_MAIN -f %IF%"
REFERENCE_CMD='wireguard-go -f %IF%'
SKIP_REFERENCE=0
UDP_LEN=1380  # 1380 + 8 + 20 = 1408 bytes: fits the 1420 tunnel MTU unfragmented
METRICS=(tcp_mbit_s tcp_ns_per_byte udp_rx_mbit_s udp_loss_pct udp_ns_per_byte)
FAILED=0
CHILD=''

die() { printf 'bench:e2e: %s\n' "$*" >&2; exit 1; }
say() { printf '== %s\n' "$*"; }
usage() { sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

# One test: iperf3 with ARGS, CPU of both daemons around it, metrics appended to DIR/metrics.tsv.
measure_test() {  # name dir iperf3-args...
  local name=$1 dir=$2 json=$2/$1.json cpu0 cpu1 bytes mbps loss
  cpu0=$(pair_cpu_seconds "$PAIR_PID_A" "$PAIR_PID_B") || die "$name: a daemon exited before the test"
  pair_iperf3 "$json" "$SECS" "${@:3}" || true  # judged by its JSON below
  cpu1=$(pair_cpu_seconds "$PAIR_PID_A" "$PAIR_PID_B") || die "$name: a daemon exited during the test"
  if ! bytes=$(jq -e '.end.sum_received.bytes' "$json" 2>/dev/null); then
    die "$name: iperf3 failed: $(jq -r '.error // empty' "$json" 2>/dev/null) $(head -c 300 "$json.err")"
  fi
  mbps=$(jq '.end.sum_received.bits_per_second / 1e6' "$json")
  loss=$(jq '.end.sum_received.lost_percent // empty' "$json")
  awk -v n="$name" -v mbps="$mbps" -v loss="$loss" -v cpu0="$cpu0" -v cpu1="$cpu1" -v bytes="$bytes" '
    BEGIN {
      printf "%s_%smbit_s\t%.1f\n", n, (n == "udp" ? "rx_" : ""), mbps
      if (loss != "") printf "%s_loss_pct\t%.1f\n", n, loss
      printf "%s_ns_per_byte\t%.2f\n", n, (bytes > 0 ? (cpu1 - cpu0) * 1e9 / bytes : 0)
    }' >>"$dir/metrics.tsv"
  say "$name: $(printf '%.1f' "$mbps") Mbit/s received; daemon CPU went from $cpu0 s to $cpu1 s"
}

# Everything for one implementation; runs in its own subshell so that a failure
# (set -e) or its teardown stays local to it.
measure_impl() {  # label template
  local dir=$OUT/$1
  mkdir -p "$dir"
  : >"$dir/metrics.tsv"  # -o may point at an earlier run's directory
  say "$1: $2"
  pair_up "$2" "$dir"
  pair_wait_handshake 5 || die "$1: no handshake"
  pair_start_iperf3_server "$dir/iperf3-server.log"
  measure_test tcp "$dir"
  sleep 1  # let the tunnel drain before the next test
  measure_test udp "$dir" -u -b 0 -l "$UDP_LEN"
  pair_alive || die "$1: a daemon exited during the tests"
  pair_exec a wg show "$PAIR_IF_A" >"$dir/wg-show.txt"
  pair_down
}

run_impl() {  # label template
  local rc=0
  # in the background so that our INT/TERM trap runs at once and can stop it
  (measure_impl "$@") &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=''
  ((rc == 0)) || { say "$1: FAILED (exit $rc)"; FAILED=1; }
}

stop_child() {
  [[ -z $CHILD ]] && return
  kill -TERM "$CHILD" 2>/dev/null || true
  wait "$CHILD" || true  # its own trap tears its pair down
}

metric_of() {  # label metric
  awk -F'\t' -v m="$2" '$1 == m { print $2; found = 1 } END { if (!found) print "FAIL" }' \
    "$OUT/$1/metrics.tsv" 2>/dev/null || echo FAIL
}

write_summary() {  # labels...
  local metric label
  {
    printf 'metric'
    printf '\t%s' "$@"
    (($# == 2)) && printf '\t%s/%s' "$1" "$2"
    printf '\n'
    for metric in "${METRICS[@]}"; do
      printf '%s' "$metric"
      for label in "$@"; do printf '\t%s' "$(metric_of "$label" "$metric")"; done
      if (($# == 2)); then
        awk -v a="$(metric_of "$1" "$metric")" -v b="$(metric_of "$2" "$metric")" \
          'BEGIN { if (a ~ /^[0-9.]+$/ && b + 0 > 0) printf "\t%.2f\n", a / b; else print "\t-" }'
      else
        printf '\n'
      fi
    done
  } >"$OUT/summary.tsv"
}

write_meta() {
  {
    echo "date=$(date -Is)"
    echo "kernel=$(uname -r)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
    echo "node=$(node --version 2>/dev/null || echo none)"
    echo "iperf3=$(iperf3 --version | head -1)"
    echo "seconds=$SECS udp_len=$UDP_LEN"
    echo "tundra_cmd=$TUNDRA_CMD"
    ((SKIP_REFERENCE)) || echo "reference_cmd=$REFERENCE_CMD"
  } >"$OUT/meta.txt"
}

main() {
  local opt labels templates i
  while getopts ':t:o:c:w:sh' opt; do
    case $opt in
      t) SECS=$OPTARG ;;
      o) OUT=$OPTARG ;;
      c) TUNDRA_CMD=$OPTARG ;;
      w) REFERENCE_CMD=$OPTARG ;;
      s) SKIP_REFERENCE=1 ;;
      h) usage; exit 0 ;;
      *) usage >&2; exit 2 ;;
    esac
  done
  [[ $SECS =~ ^[1-9][0-9]*$ ]] || die "-t needs a whole number of seconds"
  labels=(tundra) templates=("$TUNDRA_CMD")
  ((SKIP_REFERENCE)) || labels+=(wireguard-go) templates+=("$REFERENCE_CMD")
  pair_check_host "${templates[@]}" || die "cannot run here (see above)"
  if [[ $TUNDRA_CMD == *"$TUNDRA_MAIN"* && ! -f $TUNDRA_MAIN ]]; then
    die "$TUNDRA_MAIN not found: run 'npm run build' first"
  fi
  mkdir -p "$OUT"
  write_meta

  trap 'stop_child; exit 130' INT
  trap 'stop_child; exit 143' TERM
  for i in "${!labels[@]}"; do
    run_impl "${labels[i]}" "${templates[i]}"
  done

  write_summary "${labels[@]}"
  say "summary ($SECS s per test; tundra: $TUNDRA_CMD)"
  awk -F'\t' '{ printf "%-16s", $1; for (i = 2; i <= NF; i++) printf " %22s", $i; printf "\n" }' \
    "$OUT/summary.tsv"
  say "written to $OUT"
  return "$FAILED"
}

main "$@"
