#!/usr/bin/env bash
# e2e.sh -- `npm run bench:e2e`: WireGuard implementations side by side, end to end.
# Each implementation gets a fresh namespace pair (scripts/lib/netns-pair.sh) and
# runs the same tests a -> b through the tunnel, measuring the CPU both daemons use:
#   tcp1   iperf3 TCP, one stream, SECS
#   tcp4   iperf3 TCP, four streams (-P 4), SECS
#   udp    iperf3 UDP -b 0 -l 1380, SECS
#   quic   a QUIC-like load: dist/bench/udp-load.js sends 1200-byte datagrams
#          with UDP GSO and receives them with GRO, SECS (skipped, saying so,
#          while that script is not built)
#   ping   RTT of 20 pings 50 ms apart on the idle tunnel, then of pings 50 ms
#          apart during an iperf3 TCP run of one stream (from its 2nd second to
#          its last but one)
# The runs are interleaved: round 1 measures every implementation once, in the
# order given, then round 2 does the same, and so on, so that the noise of a
# shared machine spreads over all of them. Cells are medians over the rounds.
#
# Usage: bench/e2e.sh [-i 'LABEL=CMD %IF%']... [-r ROUNDS] [-t SECS] [-o DIR]
#                     [-u PATH] [-b REV] [-R LABEL]
#   -i LABEL=CMD  an implementation (repeatable): CMD is its daemon template,
#              %IF% the interface name; it may start with `env VAR=VALUE ...`,
#              must stay in the foreground and serve the wireguard-go UAPI socket.
#              LABEL: letters, digits and . _ @ + -
#   -r ROUNDS  rounds (default 2)
#   -t SECS    length of each throughput test (default 8)
#   -o DIR     output directory (default ./bench-out/<timestamp>)
#   -u PATH    the upstream wireguard-go binary for wg-upstream (default:
#              $TUNDRA_UPSTREAM_WIREGUARD_GO); only used without -i
#   -b REV     also measure tundra@REV (REV's short commit), built by
#              bench/baseline.sh into <repo>/bench-out/baseline-<commit>
#   -R LABEL   reference of the ratio columns (default wg-upstream when it is
#              measured, else wg-debian; none if neither is)
#
# Without -i the implementations are
#   tundra            node <repo>/dist/src/cli/main.js -f %IF%
#   tundra-nooffload  env TUNDRA_OFFLOAD=none node <repo>/dist/src/cli/main.js -f %IF%
#   wg-upstream       env WG_PROCESS_FOREGROUND=1 PATH %IF%    (only with -u PATH or
#                     TUNDRA_UPSTREAM_WIREGUARD_GO=PATH; left out, saying so, without)
#   wg-debian         wireguard-go -f %IF%                     (when installed)
#
# Metrics, per test: *_mbit_s is what the receiver got; *_ns_per_byte the CPU
# time (utime+stime) both daemons spent during the test over the bytes received;
# *_sender_ns_per_byte the same for the sending daemon (a) alone, and
# *_sender_main_ns_per_byte for its main thread alone (the thread the process
# started with: where the control plane runs; all of it in tundra's inline mode);
# *_machine_ns_per_byte the CPU time of the whole machine (every core's busy time
# in /proc/stat: both daemons, iperf3, the kernel) over the bytes received, the
# input of bench/model.ts; *_retransmits iperf3's TCP retransmits (end.sum_sent); *_tun_drops the growth of
# tx_dropped of both tunnel interfaces (packets the kernel could not queue to the
# daemon); *_loss_pct the UDP loss (quic: datagrams sent but not received);
# ping_idle_rtt_ms and ping_load_rtt_ms the average RTTs, ping_load_tcp_mbit_s
# the TCP load under them.
#
# Output in DIR: summary.tsv (one row per metric, one column per implementation
# holding the median over the rounds, then one LABEL/REF ratio column per other
# implementation), rounds.tsv (round, label, metric, value: every measurement),
# meta.txt (machine, versions, commands), and per implementation and round
# LABEL/round-N/ with the iperf3 and udp-load JSON, ping output, daemon logs,
# `ethtool -k` of the tunnel and `wg show`. A value is FAIL when its test failed,
# skip when it did not run. Exit status: 0 if every measurement ran, 1 otherwise.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TUNDRA_MAIN=$REPO/dist/src/cli/main.js
UDP_LOAD=$REPO/dist/bench/udp-load.js
# shellcheck source=scripts/lib/netns-pair.sh
source "$REPO/scripts/lib/netns-pair.sh"

SECS=8
ROUNDS=2
OUT=./bench-out/$(date +%Y%m%d-%H%M%S)
UPSTREAM=${TUNDRA_UPSTREAM_WIREGUARD_GO:-}
BASELINE_REV=''
REF=''
UDP_LEN=1380     # 1380 + 8 + 20 = 1408 bytes: fits the 1420 tunnel MTU unfragmented
QUIC_SIZE=1200   # the datagram size of QUIC's usual 1200-byte floor
QUIC_PORT=5301
PING_INTERVAL=0.05
PING_COUNT=20
SETTLE=1         # seconds between tests, for the tunnel to drain
METRICS=(
  tcp1_mbit_s tcp1_ns_per_byte tcp1_sender_ns_per_byte tcp1_sender_main_ns_per_byte tcp1_machine_ns_per_byte tcp1_retransmits tcp1_tun_drops
  tcp4_mbit_s tcp4_ns_per_byte tcp4_sender_ns_per_byte tcp4_sender_main_ns_per_byte tcp4_machine_ns_per_byte tcp4_retransmits tcp4_tun_drops
  udp_mbit_s udp_ns_per_byte udp_sender_ns_per_byte udp_sender_main_ns_per_byte udp_machine_ns_per_byte udp_loss_pct udp_tun_drops
  quic_mbit_s quic_ns_per_byte quic_sender_ns_per_byte quic_sender_main_ns_per_byte quic_machine_ns_per_byte quic_loss_pct quic_tun_drops
  ping_idle_rtt_ms ping_load_rtt_ms ping_load_tcp_mbit_s
)
LABELS=() TEMPLATES=()
FAILED=0
CHILD=''

die() { printf 'bench:e2e: %s\n' "$*" >&2; exit 1; }
say() { printf '== %s\n' "$*"; }
usage() { sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

add_impl() {  # label template
  local label
  [[ $1 =~ ^[A-Za-z0-9._@+-]+$ ]] || die "bad label '$1': letters, digits and . _ @ + - only"
  [[ $2 == *%IF%* ]] || die "$1: the daemon template has no %IF%: $2"
  for label in "${LABELS[@]}"; do
    [[ $label != "$1" ]] || die "label $1 given twice"
  done
  LABELS+=("$1") TEMPLATES+=("$2")
}

# ---------------------------------------------------------------- one measurement
# These run inside measure_impl's subshell, with its pair up.

emit() { printf '%s\t%s\n' "$1" "$2" >>"$METRICS_FILE"; }

emit_all() {  # test value: every metric of the test gets value (FAIL, skip)
  local metric
  for metric in "${METRICS[@]}"; do
    [[ $metric != "$1"_* ]] || emit "$metric" "$2"
  done
}

# A failed test marks its metrics FAIL and lets the next test run. The tests
# return 0 and count failures in FAILED_TESTS: a function called in a `||` list
# would run with set -e off, and a daemon that exits must still stop the round.
test_failed() {  # test message
  say "$1: FAILED: $2"
  emit_all "$1" FAIL
  FAILED_TESTS=$((FAILED_TESTS + 1))
}

settle() { sleep "$SETTLE"; }

daemon_cpu() { pair_cpu_seconds "$PAIR_PID_A" "$PAIR_PID_B" || die "a daemon exited"; }
# The sending daemon's CPU, its main thread's (/proc/PID/task/PID) and the machine's
# busy time (user nice system irq softirq steal of /proc/stat): "sender main machine".
sender_cpu() {
  local machine
  machine=$(awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat)
  echo "$(pair_cpu_seconds "$PAIR_PID_A" || die "a daemon exited") $(pair_cpu_seconds "$PAIR_PID_A/task/$PAIR_PID_A" || die "a daemon exited") $machine"
}
emit_sender() {  # test "sender0 main0 machine0" "sender1 main1 machine1" bytes
  local t0 m0 c0 t1 m1 c1
  read -r t0 m0 c0 <<<"$2"
  read -r t1 m1 c1 <<<"$3"
  emit "${1}_sender_ns_per_byte" "$(ns_per_byte "$t0" "$t1" "$4")"
  emit "${1}_sender_main_ns_per_byte" "$(ns_per_byte "$m0" "$m1" "$4")"
  emit "${1}_machine_ns_per_byte" "$(ns_per_byte "$c0" "$c1" "$4")"
}

tun_drops() {  # tx_dropped of both tunnel interfaces, summed; - if unreadable
  local a b
  a=$(pair_tun_stat a tx.dropped) && b=$(pair_tun_stat b tx.dropped) || { echo -; return 0; }
  echo $((a + b))
}

ns_per_byte() {  # cpu0 cpu1 bytes
  awk -v c0="$1" -v c1="$2" -v n="$3" 'BEGIN { if (n > 0) printf "%.2f\n", (c1 - c0) * 1e9 / n; else print "FAIL" }'
}

delta() { [[ $1 == - || $2 == - ]] && echo - || echo $(($2 - $1)); }

fmt() { awk -v d="$1" -v x="$2" 'BEGIN { printf "%." d "f\n", x }'; }

test_iperf3() {  # name dir iperf3-args...
  local name=$1 dir=$2 json=$2/$1.json cpu0 cpu1 send0 send1 drop0 drop1 bytes mbps extra
  settle
  drop0=$(tun_drops) cpu0=$(daemon_cpu) send0=$(sender_cpu)
  pair_iperf3 "$json" "$SECS" "${@:3}" || true  # judged by its JSON below
  cpu1=$(daemon_cpu) send1=$(sender_cpu) drop1=$(tun_drops)
  if ! bytes=$(jq -e '.end.sum_received.bytes' "$json" 2>/dev/null); then
    test_failed "$name" "iperf3: $(jq -r '.error // empty' "$json" 2>/dev/null) $(head -c 300 "$json.err")"
    return 0
  fi
  mbps=$(fmt 1 "$(jq '.end.sum_received.bits_per_second / 1e6' "$json")")
  emit "${name}_mbit_s" "$mbps"
  emit "${name}_ns_per_byte" "$(ns_per_byte "$cpu0" "$cpu1" "$bytes")"
  emit_sender "$name" "$send0" "$send1" "$bytes"
  if [[ $name == udp ]]; then
    extra=$(fmt 2 "$(jq '.end.sum_received.lost_percent' "$json")")
    emit "${name}_loss_pct" "$extra"
    extra="loss $extra %"
  else
    extra=$(jq '.end.sum_sent.retransmits // "FAIL"' "$json")
    emit "${name}_retransmits" "$extra"
    extra="$extra retransmits"
  fi
  emit "${name}_tun_drops" "$(delta "$drop0" "$drop1")"
  say "$name: $mbps Mbit/s, $(ns_per_byte "$cpu0" "$cpu1" "$bytes") ns/byte, $extra, $(delta "$drop0" "$drop1") TUN drops"
}

last_json() { grep '^{' "$1" 2>/dev/null | tail -n 1; }  # udp-load prints one JSON line last

test_quic() {  # dir
  local dir=$1 recv send cpu0 cpu1 send0 send1 drop0 drop1 sent got bytes secs mbps loss
  if [[ ! -f $UDP_LOAD ]]; then
    say "quic: skipped: $UDP_LOAD not found (bench/udp-load.ts, built by npm run build)"
    emit_all quic skip
    return 0
  fi
  settle
  pair_spawn b "$dir/quic-recv.log" timeout -k 2 "$((SECS + 20))" \
    node "$UDP_LOAD" recv --listen "$PAIR_V4_B:$QUIC_PORT" --seconds "$((SECS + 2))" --gro 1
  recv=$PAIR_SPAWNED
  if ! pair_wait_listening b udp "$QUIC_PORT" 10; then
    test_failed quic "the receiver did not start: $(tail -c 300 "$dir/quic-recv.log")"
    return 0
  fi
  drop0=$(tun_drops) cpu0=$(daemon_cpu) send0=$(sender_cpu)
  pair_spawn a "$dir/quic-send.log" timeout -k 2 "$((SECS + 15))" \
    node "$UDP_LOAD" send --to "$PAIR_V4_B:$QUIC_PORT" --seconds "$SECS" --size "$QUIC_SIZE" --gso 1
  send=$PAIR_SPAWNED
  wait "$send" || true  # judged by its JSON below
  cpu1=$(daemon_cpu) send1=$(sender_cpu) drop1=$(tun_drops)
  wait "$recv" || true
  last_json "$dir/quic-send.log" >"$dir/quic-send.json"
  last_json "$dir/quic-recv.log" >"$dir/quic-recv.json"
  if ! sent=$(jq -e '.datagrams' "$dir/quic-send.json" 2>/dev/null) ||
    ! got=$(jq -e '.datagrams' "$dir/quic-recv.json" 2>/dev/null); then
    test_failed quic "udp-load: $(tail -c 200 "$dir/quic-send.log") $(tail -c 200 "$dir/quic-recv.log")"
    return 0
  fi
  bytes=$(jq '.bytes' "$dir/quic-recv.json") secs=$(jq '.seconds' "$dir/quic-send.json")
  # over the sender's seconds: the receiver listens longer than it sends
  mbps=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.1f\n", (s > 0 ? b * 8 / s / 1e6 : 0) }')
  loss=$(awk -v s="$sent" -v g="$got" 'BEGIN { printf "%.2f\n", (s > g && s > 0 ? (s - g) * 100 / s : 0) }')
  emit quic_mbit_s "$mbps"
  emit quic_ns_per_byte "$(ns_per_byte "$cpu0" "$cpu1" "$bytes")"
  emit_sender quic "$send0" "$send1" "$bytes"
  emit quic_loss_pct "$loss"
  emit quic_tun_drops "$(delta "$drop0" "$drop1")"
  say "quic: $mbps Mbit/s, $(ns_per_byte "$cpu0" "$cpu1" "$bytes") ns/byte, loss $loss % ($got of $sent datagrams), $(delta "$drop0" "$drop1") TUN drops"
}

ping_avg() {  # ping -q output: the average RTT, FAIL without replies
  # "rtt min/avg/max/mdev = 0.4/0.5/0.7/0.1 ms": the 5th /-separated field is avg
  awk -F/ '/^rtt/ { print $5; found = 1 } END { if (!found) print "FAIL" }' "$1"
}

run_ping() {  # log count
  pair_spawn a "$1" ping -c "$2" -i "$PING_INTERVAL" -W 1 -q "$PAIR_V4_B"
  wait "$PAIR_SPAWNED" || true  # judged by its output
}

test_ping() {  # dir
  local dir=$1 load_secs count idle loaded mbps
  settle
  run_ping "$dir/ping-idle.txt" "$PING_COUNT"
  idle=$(ping_avg "$dir/ping-idle.txt")
  emit ping_idle_rtt_ms "$idle"
  settle
  load_secs=$((SECS < 3 ? 3 : SECS))
  # pings from the load's 2nd second to its last but one: past slow start, before the end
  count=$(awk -v s="$load_secs" -v i="$PING_INTERVAL" -v c="$PING_COUNT" \
    'BEGIN { n = int((s - 2) / i); print (n < c ? c : n) }')
  pair_iperf3_start "$dir/ping-load-tcp.json" "$load_secs"
  local load=$PAIR_SPAWNED
  sleep 1
  run_ping "$dir/ping-load.txt" "$count"
  wait "$load" || true
  loaded=$(ping_avg "$dir/ping-load.txt")
  emit ping_load_rtt_ms "$loaded"
  if mbps=$(jq -e '.end.sum_received.bits_per_second / 1e6' "$dir/ping-load-tcp.json" 2>/dev/null); then
    mbps=$(fmt 1 "$mbps")
  else
    mbps=FAIL
  fi
  emit ping_load_tcp_mbit_s "$mbps"
  say "ping: idle $idle ms; $loaded ms under TCP x1 at $mbps Mbit/s"
  [[ $idle != FAIL && $loaded != FAIL && $mbps != FAIL ]] ||
    FAILED_TESTS=$((FAILED_TESTS + 1))  # the FAIL cells are emitted above
}

# Every test of one implementation in one round; runs in its own subshell so
# that a failure (set -e) or its teardown stays local to it.
measure_impl() {  # round label template
  local dir=$OUT/$2/round-$1
  FAILED_TESTS=0
  mkdir -p "$dir"
  METRICS_FILE=$dir/metrics.tsv
  : >"$METRICS_FILE"  # -o may point at an earlier run's directory
  say "round $1/$ROUNDS: $2: $3"
  pair_up "$3" "$dir"
  pair_wait_handshake 5 || die "$2: no handshake"
  if command -v ethtool >/dev/null; then
    pair_exec a ethtool -k "$PAIR_IF_A" >"$dir/ethtool-a.txt" 2>&1 || true
  fi
  pair_start_iperf3_server "$dir/iperf3-server.log"
  test_iperf3 tcp1 "$dir"
  test_iperf3 tcp4 "$dir" -P 4
  test_iperf3 udp "$dir" -u -b 0 -l "$UDP_LEN"
  test_quic "$dir"
  test_ping "$dir"
  pair_alive || die "$2: a daemon exited during the tests"
  pair_exec a wg show "$PAIR_IF_A" >"$dir/wg-show.txt"
  pair_down
  ((FAILED_TESTS == 0)) || die "$2: $FAILED_TESTS test(s) failed"
}

run_impl() {  # round label template
  local rc=0
  # in the background so that our INT/TERM trap runs at once and can stop it
  (measure_impl "$@") &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=''
  ((rc == 0)) || { say "round $1: $2: FAILED (exit $rc)"; FAILED=1; }
}

stop_child() {
  [[ -z $CHILD ]] && return
  kill -TERM "$CHILD" 2>/dev/null || true
  wait "$CHILD" || true  # its own trap tears its pair down
}

# ---------------------------------------------------------------- results

write_rounds() {
  local r label metric
  {
    printf 'round\tlabel\tmetric\tvalue\n'
    for ((r = 1; r <= ROUNDS; r++)); do
      for label in "${LABELS[@]}"; do
        for metric in "${METRICS[@]}"; do
          printf '%s\t%s\t%s\t%s\n' "$r" "$label" "$metric" "$(
            awk -F'\t' -v m="$metric" '$1 == m { v = $2 } END { print (v == "" ? "FAIL" : v) }' \
              "$OUT/$label/round-$r/metrics.tsv" 2>/dev/null || echo FAIL)"
        done
      done
    done
  } >"$OUT/rounds.tsv"
}

# summary.tsv from rounds.tsv: medians, then ratios against REF
write_summary() {
  local labels metrics
  labels=$(IFS=,; echo "${LABELS[*]}") metrics=$(IFS=,; echo "${METRICS[*]}")
  awk -F'\t' -v labels="$labels" -v metrics="$metrics" -v ref="$REF" '
    function decimals(m) {
      if (m ~ /_ms$/) return 3
      if (m ~ /_(ns_per_byte|pct)$/) return 2
      if (m ~ /_mbit_s$/) return 1
      return -1  # counts
    }
    function median(k,   n, i, j, t, a, x, d) {
      n = count[k]
      if (n == 0) return (k in failed) ? "FAIL" : "skip"
      for (i = 1; i <= n; i++) a[i] = val[k, i]
      for (i = 2; i <= n; i++)  # insertion sort: a handful of rounds
        for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      x = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      d = decimals(substr(k, index(k, SUBSEP) + 1))
      if (d < 0) d = (x == int(x)) ? 0 : 1
      return sprintf("%." d "f", x)
    }
    function numeric(x) { return x ~ /^-?[0-9]+(\.[0-9]+)?$/ }
    NR > 1 {
      k = $2 SUBSEP $3
      if (numeric($4)) val[k, ++count[k]] = $4 + 0
      else if ($4 == "FAIL") failed[k] = 1
    }
    END {
      nl = split(labels, L, ","); nm = split(metrics, M, ",")
      printf "metric"
      for (i = 1; i <= nl; i++) printf "\t%s", L[i]
      for (i = 1; i <= nl; i++) if (ref != "" && L[i] != ref) printf "\t%s/%s", L[i], ref
      printf "\n"
      for (j = 1; j <= nm; j++) {
        printf "%s", M[j]
        for (i = 1; i <= nl; i++) { med[i] = median(L[i] SUBSEP M[j]); printf "\t%s", med[i]; if (L[i] == ref) r = med[i] }
        for (i = 1; i <= nl; i++) {
          if (ref == "" || L[i] == ref) continue
          if (numeric(med[i]) && numeric(r) && r + 0 != 0) printf "\t%.2f", med[i] / r
          else printf "\t-"
        }
        printf "\n"
      }
    }' "$OUT/rounds.tsv" >"$OUT/summary.tsv"
}

# The summary as a table: each ratio in parentheses after its value.
print_summary() {
  awk -F'\t' -v nl="${#LABELS[@]}" -v ref="$REF" '
    NR == 1 {
      for (i = 2; i <= nl + 1; i++) { lab[i] = $i; if ($i != ref) col[$i] = 0 }
      for (i = nl + 2; i <= NF; i++) { split($i, p, "/"); col[p[1]] = i }
    }
    {
      for (i = 1; i <= nl + 1; i++) {
        c = $i
        if (NR == 1 && i > 1 && $i == ref) c = c " (ref)"
        if (NR > 1 && i > 1 && col[lab[i]] > 0 && $(col[lab[i]]) != "-") c = c " (" $(col[lab[i]]) ")"
        cell[NR, i] = c
        if (length(c) > w[i]) w[i] = length(c)
      }
    }
    END {
      for (r = 1; r <= NR; r++) {
        for (i = 1; i <= nl + 1; i++) printf (i == 1 ? "%-" w[i] "s" : "  %" w[i] "s"), cell[r, i]
        printf "\n"
      }
    }' "$OUT/summary.tsv"
}

write_meta() {
  local i bin
  {
    echo "date=$(date -Is)"
    echo "kernel=$(uname -r)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
    echo "loadavg_start=$(cat /proc/loadavg)"
    echo "node=$(node --version 2>/dev/null || echo none)"
    echo "iperf3=$(iperf3 --version | head -1)"
    echo "wg_tools=$(wg --version 2>/dev/null | head -1)"
    echo "tundra_rev=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "seconds=$SECS rounds=$ROUNDS settle=$SETTLE udp_len=$UDP_LEN quic_size=$QUIC_SIZE ping_interval=$PING_INTERVAL"
    echo "udp_load=$([[ -f $UDP_LOAD ]] && echo "$UDP_LOAD" || echo "missing: quic skipped")"
    echo "reference=${REF:-none}"
    echo "order=${LABELS[*]}"
    for i in "${!LABELS[@]}"; do
      echo "impl.${LABELS[i]}=${TEMPLATES[i]}"
      bin=$(command -v "$(pair_template_command "${TEMPLATES[i]}")")
      [[ $bin == */node ]] && continue  # node --version is above
      echo "impl.${LABELS[i]}.bin=$bin sha256=$(sha256sum "$bin" | cut -d' ' -f1) $("$bin" --version 2>&1 | head -1)"
    done
  } >"$OUT/meta.txt"
}

# ---------------------------------------------------------------- main

default_impls() {
  add_impl tundra "node $TUNDRA_MAIN -f %IF%"
  add_impl tundra-nooffload "env TUNDRA_OFFLOAD=none node $TUNDRA_MAIN -f %IF%"
  if [[ -n $UPSTREAM ]]; then
    [[ -x $UPSTREAM && ! -d $UPSTREAM ]] || die "upstream wireguard-go is not an executable file: $UPSTREAM"
    UPSTREAM=$(readlink -f "$UPSTREAM")
    [[ $UPSTREAM != *[[:space:]]* ]] || die "the upstream path must not contain white space: $UPSTREAM"
    add_impl wg-upstream "env WG_PROCESS_FOREGROUND=1 $UPSTREAM %IF%"
  else
    say "wg-upstream left out: name its binary with -u PATH or TUNDRA_UPSTREAM_WIREGUARD_GO=PATH"
  fi
  if command -v wireguard-go >/dev/null; then
    add_impl wg-debian 'wireguard-go -f %IF%'
  else
    say "wg-debian left out: wireguard-go is not installed"
  fi
}

add_baseline() {
  local commit short template
  commit=$(git -C "$REPO" rev-parse --verify --quiet "$BASELINE_REV^{commit}") ||
    die "-b: not a commit: $BASELINE_REV"
  short=$(git -C "$REPO" rev-parse --short=7 "$commit")
  say "baseline tundra@$short: bench/baseline.sh $BASELINE_REV"
  template=$("$REPO/bench/baseline.sh" "$commit" "$REPO/bench-out/baseline-$commit") ||
    die "-b: building $BASELINE_REV failed"
  add_impl "tundra@$short" "$template"
}

check_templates() {
  local template word words
  for template in "${TEMPLATES[@]}"; do
    read -r -a words <<<"$template"
    for word in "${words[@]}"; do
      [[ $word != *.js || -f $word ]] || die "$word not found: run 'npm run build' first"
    done
  done
}

main() {
  local opt i r specs=() label
  while getopts ':i:r:t:o:u:b:R:h' opt; do
    case $opt in
      i) specs+=("$OPTARG") ;;
      r) ROUNDS=$OPTARG ;;
      t) SECS=$OPTARG ;;
      o) OUT=$OPTARG ;;
      u) UPSTREAM=$OPTARG ;;
      b) BASELINE_REV=$OPTARG ;;
      R) REF=$OPTARG ;;
      h) usage; exit 0 ;;
      :) die "-$OPTARG needs a value (try -h)" ;;
      *) usage >&2; exit 2 ;;
    esac
  done
  shift $((OPTIND - 1))
  (($# == 0)) || die "unexpected arguments: $* (try -h)"
  [[ $SECS =~ ^[1-9][0-9]*$ ]] || die "-t needs a whole number of seconds"
  [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "-r needs a whole number of rounds"

  if ((${#specs[@]})); then
    for i in "${specs[@]}"; do
      [[ $i == *=* ]] || die "-i needs LABEL=CMD, not '$i'"
      add_impl "${i%%=*}" "${i#*=}"
    done
    [[ -z $UPSTREAM ]] ||
      say "note: -u and TUNDRA_UPSTREAM_WIREGUARD_GO apply to the defaults only, and -i is given"
  else
    default_impls
  fi
  [[ -z $BASELINE_REV ]] || add_baseline

  if [[ -n $REF ]]; then
    for label in "${LABELS[@]}" ''; do [[ $label != "$REF" ]] || break; done
    [[ -n $label ]] || die "-R $REF: no such implementation (${LABELS[*]})"
  else
    for label in wg-upstream wg-debian; do
      [[ " ${LABELS[*]} " != *" $label "* ]] || { REF=$label; break; }
    done
    [[ -n $REF ]] || say "no reference (wg-upstream or wg-debian): no ratio columns"
  fi

  pair_check_host "${TEMPLATES[@]}" || die "cannot run here (see above)"
  check_templates
  [[ -f $UDP_LOAD ]] || say "quic test skipped: $UDP_LOAD not found"
  mkdir -p "$OUT"
  write_meta

  trap 'stop_child; exit 130' INT
  trap 'stop_child; exit 143' TERM
  for ((r = 1; r <= ROUNDS; r++)); do
    for i in "${!LABELS[@]}"; do
      run_impl "$r" "${LABELS[i]}" "${TEMPLATES[i]}"
    done
  done
  echo "loadavg_end=$(cat /proc/loadavg)" >>"$OUT/meta.txt"

  write_rounds
  write_summary
  say "summary: median of $ROUNDS round(s), $SECS s per test${REF:+; (ratio) = implementation / $REF}"
  print_summary
  say "written to $OUT"
  return "$FAILED"
}

main "$@"
