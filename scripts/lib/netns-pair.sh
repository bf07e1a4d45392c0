# shellcheck shell=bash
# netns-pair.sh -- two network namespaces joined by a veth, a WireGuard daemon in
# each, configured as each other's peer. Sourced by scripts/demo.sh and bench/rss.sh.
#
#   ns tdr-<pid>-a                                ns tdr-<pid>-b
#   tun tdr<pid>a  100.96.0.1/24 fd7a:7d0::1/64   tun tdr<pid>b  100.96.0.2/24 fd7a:7d0::2/64
#   veth tdr<pid>va 198.18.0.1/24  <---------->   veth tdr<pid>vb 198.18.0.2/24
#
# <pid> is the pid of the (sub)shell that calls pair_up, so parallel runs and
# subshells never share a name (interface names stay within 15 characters).
#
#   pair_check_host TEMPLATE... true if we are root and have every tool the pair,
#                               the iperf3 helpers and the daemon templates need
#   pair_up TEMPLATE [LOGDIR]   build the pair; TEMPLATE is the daemon command with
#                               %IF% for the interface name, split on whitespace
#                               (no quoting). It must stay in the foreground, exec
#                               the daemon (so its pid is ours to watch and kill)
#                               and serve /var/run/wireguard/%IF%.sock. Daemon logs
#                               go to LOGDIR (default: a temporary directory).
#                               Installs the EXIT/INT/TERM traps that tear it down.
#   pair_wait_handshake [SECS]  send one ping a->b, wait for the handshake; 1 on timeout
#   pair_exec a|b CMD...        run CMD inside namespace a or b
#   pair_spawn a|b LOG CMD...   start CMD in the background inside the namespace,
#                               tracked for teardown; its pid is left in PAIR_SPAWNED
#   pair_wait_listening a|b tcp|udp PORT [SECS]
#                               wait until something listens on PORT in the namespace
#   pair_start_iperf3_server LOG
#                               iperf3 -s in b on 100.96.0.2; returns once it listens
#   pair_iperf3 FILE SECS ARGS...
#                               iperf3 client a -> b for SECS, JSON in FILE (stderr in
#                               FILE.err); bounded by --connect-timeout and `timeout`
#   pair_iperf3_start FILE SECS ARGS...
#                               the same in the background, tracked; pid in PAIR_SPAWNED
#   pair_alive                  true while both daemons run
#   pair_cpu_seconds PID...     utime+stime of the given processes, summed
#   pair_tun_stat a|b PATH      a counter of that side's tunnel interface, read inside
#                               its namespace: PATH into `ip -s -j link`'s stats64,
#                               e.g. tx.dropped
#   pair_template_command TEMPLATE
#                               the program a daemon template runs: its first word
#                               after any leading `env` and VAR=VALUE words
#   pair_down                   stop everything tracked, delete the namespaces
#
#   pair_show_logs              print the last lines of both daemon logs to stderr
#
# After pair_up: PAIR_NS_A/B, PAIR_IF_A/B, PAIR_PID_A/B (daemon pids), PAIR_LOG_A/B,
# and PAIR_TMP, a private scratch directory that pair_down removes.

readonly PAIR_UNDER_A=198.18.0.1 PAIR_UNDER_B=198.18.0.2
readonly PAIR_V4_A=100.96.0.1 PAIR_V4_B=100.96.0.2
readonly PAIR_V6_A=fd7a:7d0::1 PAIR_V6_B=fd7a:7d0::2
readonly PAIR_PORT_A=51820 PAIR_PORT_B=51821
readonly PAIR_TUN_MTU=1420 PAIR_VETH_MTU=1500
readonly PAIR_UAPI_DIR=/var/run/wireguard
readonly PAIR_IPERF3_PORT=5201

PAIR_NS_A='' PAIR_NS_B='' PAIR_IF_A='' PAIR_IF_B=''
PAIR_PID_A='' PAIR_PID_B='' PAIR_LOG_A='' PAIR_LOG_B='' PAIR_SPAWNED=''
PAIR_TMP=''
PAIR__NETNS=()   # namespaces we created, deleted by pair_down
PAIR__PIDS=()    # processes we started, stopped by pair_down ...
PAIR__STARTS=()  # ... only while their start time still matches (pid reuse)

pair__log() { printf 'netns-pair: %s\n' "$*" >&2; }

pair__ns() {
  case $1 in
    a) echo "$PAIR_NS_A" ;;
    b) echo "$PAIR_NS_B" ;;
    *) pair__log "side must be a or b, not '$1'"; return 1 ;;
  esac
}

# Fields N... (numbered as in proc(5)) of /proc/PID/stat on one line; fails if PID is gone.
pair__stat() {
  local stat fields n picked=()
  { stat=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
  read -r -a fields <<<"${stat##*) }"  # comm may contain spaces; field 3 follows ") "
  for n in "${@:2}"; do picked+=("${fields[n - 3]}"); done
  echo "${picked[*]}"
}

# Running (not a zombie) and still the process we started.
pair__running() {
  local state start
  read -r state start <<<"$(pair__stat "$1" 3 22)"
  [[ $start == "$2" && $state != Z ]]
}

pair__track() {
  PAIR__PIDS+=("$1")
  PAIR__STARTS+=("$(pair__stat "$1" 22 || echo gone)")
}

pair__start_of() {  # the start time recorded for a tracked pid
  local i
  for i in "${!PAIR__PIDS[@]}"; do
    [[ ${PAIR__PIDS[i]} != "$1" ]] || { echo "${PAIR__STARTS[i]}"; return 0; }
  done
  return 1
}

pair__stop() {
  local pid=$1 start=$2 i
  if pair__running "$pid" "$start"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do  # up to 3 s to exit cleanly
      pair__running "$pid" "$start" || break
      sleep 0.1
    done
    if pair__running "$pid" "$start"; then
      pair__log "pid $pid ignored SIGTERM, killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true  # reap it
}

pair_down() {
  local i ns
  for ((i = ${#PAIR__PIDS[@]} - 1; i >= 0; i--)); do
    pair__stop "${PAIR__PIDS[i]}" "${PAIR__STARTS[i]}"
  done
  for ns in "${PAIR__NETNS[@]}"; do
    ip netns del "$ns" 2>/dev/null || pair__log "could not delete netns $ns"
  done
  # a daemon killed with SIGKILL leaves its socket behind; remove only ours
  for i in "$PAIR_IF_A" "$PAIR_IF_B"; do
    [[ -z $i ]] || rm -f "$PAIR_UAPI_DIR/$i.sock"
  done
  [[ -z $PAIR_TMP ]] || rm -rf "$PAIR_TMP"
  PAIR__PIDS=() PAIR__STARTS=() PAIR__NETNS=() PAIR_TMP=''
  PAIR_NS_A='' PAIR_NS_B='' PAIR_IF_A='' PAIR_IF_B='' PAIR_PID_A='' PAIR_PID_B=''
}

pair__on_exit() {
  local rc=$?
  trap '' INT TERM  # a second Ctrl-C must not cut the teardown short
  set +e
  if ((rc == 130 || rc == 143)); then
    pair__log "interrupted, tearing down"
  elif ((rc != 0)); then
    pair_show_logs
  fi
  pair_down
  exit "$rc"
}

pair_show_logs() {  # the daemons' last words usually say what went wrong
  local log
  for log in "$PAIR_LOG_A" "$PAIR_LOG_B"; do
    [[ -s $log ]] || continue
    pair__log "last lines of $log:"
    tail -n 15 "$log" >&2
  done
}

pair_check_host() {
  local tool template ok=0
  ((EUID == 0)) || { pair__log "needs root (network namespaces): run it with sudo"; return 1; }
  for tool in ip wg ping iperf3 jq ss sysctl timeout; do
    command -v "$tool" >/dev/null && continue
    pair__log "missing tool: $tool (apt-get install -y iproute2 wireguard-tools iputils-ping iperf3 jq procps)"
    ok=1
  done
  for template in "$@"; do
    tool=$(pair_template_command "$template")
    command -v "$tool" >/dev/null && continue
    pair__log "daemon command not found: ${tool:-nothing} (from '$template')"
    ok=1
  done
  return "$ok"
}

pair_template_command() {
  local words word
  read -r -a words <<<"$1"  # split on whitespace, as pair_up does
  for word in "${words[@]}"; do
    [[ $word == env || $word =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || { echo "$word"; return 0; }
  done
}

pair_exec() {
  local ns
  ns=$(pair__ns "$1") || return 1
  shift
  ip netns exec "$ns" "$@"
}

pair_spawn() {
  local ns
  ns=$(pair__ns "$1") || return 1
  ip netns exec "$ns" "${@:3}" >"$2" 2>&1 &
  PAIR_SPAWNED=$!
  pair__track "$PAIR_SPAWNED"
}

pair_wait_listening() {  # side tcp|udp port [secs]
  local flag i
  case $2 in
    tcp) flag=-Hltn ;;
    udp) flag=-Hlun ;;
    *) pair__log "protocol must be tcp or udp, not '$2'"; return 1 ;;
  esac
  for ((i = 0; i < ${4:-5} * 10; i++)); do
    [[ -z $(pair_exec "$1" ss "$flag" "sport = :$3") ]] || return 0
    sleep 0.1
  done
  pair__log "nothing listens on $2 port $3 in side $1 after ${4:-5} s"
  return 1
}

pair_start_iperf3_server() {
  pair_spawn b "$1" iperf3 -s -B "$PAIR_V4_B" -p "$PAIR_IPERF3_PORT"
  pair_wait_listening b tcp "$PAIR_IPERF3_PORT" 5
}

pair_iperf3_start() {
  ip netns exec "$PAIR_NS_A" timeout -k 2 "$(($2 + 15))" \
    iperf3 -c "$PAIR_V4_B" -p "$PAIR_IPERF3_PORT" -t "$2" -J --connect-timeout 3000 "${@:3}" \
    >"$1" 2>"$1.err" &
  PAIR_SPAWNED=$!
  pair__track "$PAIR_SPAWNED"
}

pair_iperf3() {
  pair_iperf3_start "$@"
  wait "$PAIR_SPAWNED"  # waiting on a background job lets a signal interrupt us at once
}

pair_tun_stat() {  # side path
  local ifname
  case $1 in
    a) ifname=$PAIR_IF_A ;;
    b) ifname=$PAIR_IF_B ;;
    *) pair__log "side must be a or b, not '$1'"; return 1 ;;
  esac
  pair_exec "$1" ip -s -j link show dev "$ifname" | jq -e ".[0].stats64.$2"
}

pair_alive() {
  pair__running "$PAIR_PID_A" "$(pair__start_of "$PAIR_PID_A")" &&
    pair__running "$PAIR_PID_B" "$(pair__start_of "$PAIR_PID_B")"
}

pair_cpu_seconds() {
  local pid ticks=0 utime stime
  for pid in "$@"; do
    read -r utime stime <<<"$(pair__stat "$pid" 14 15)"
    [[ -n $stime ]] || { pair__log "process $pid is gone"; return 1; }
    ticks=$((ticks + utime + stime))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f\n", t / hz }'
}

# Start the daemon for one side and return once its UAPI socket is up.
pair__start_daemon() {  # side template ifname log
  local side=$1 ifname=$3 log=$4 argv i
  read -r -a argv <<<"${2//%IF%/$ifname}"
  pair_spawn "$side" "$log" "${argv[@]}"
  for ((i = 0; i < 100; i++)); do  # up to 10 s: node may take a while to start
    [[ -S $PAIR_UAPI_DIR/$ifname.sock ]] && break
    pair__running "$PAIR_SPAWNED" "$(pair__start_of "$PAIR_SPAWNED")" || {
      pair__log "daemon '${argv[*]}' exited before serving its UAPI socket"
      return 1
    }
    sleep 0.1
  done
  [[ -S $PAIR_UAPI_DIR/$ifname.sock ]] || {
    pair__log "no UAPI socket $PAIR_UAPI_DIR/$ifname.sock after 10 s"
    return 1
  }
  pair_exec "$side" ip link show dev "$ifname" >/dev/null || {
    pair__log "daemon serves a socket but made no interface $ifname"
    return 1
  }
}

# wg set + addresses for one side; its peer is the other side.
pair__configure() {  # side private-key-file peer-public-key
  local side=$1 ifname port v4 v6 peer_under peer_port peer_v4 peer_v6
  if [[ $side == a ]]; then
    ifname=$PAIR_IF_A port=$PAIR_PORT_A v4=$PAIR_V4_A v6=$PAIR_V6_A
    peer_under=$PAIR_UNDER_B peer_port=$PAIR_PORT_B peer_v4=$PAIR_V4_B peer_v6=$PAIR_V6_B
  else
    ifname=$PAIR_IF_B port=$PAIR_PORT_B v4=$PAIR_V4_B v6=$PAIR_V6_B
    peer_under=$PAIR_UNDER_A peer_port=$PAIR_PORT_A peer_v4=$PAIR_V4_A peer_v6=$PAIR_V6_A
  fi
  pair_exec "$side" wg set "$ifname" listen-port "$port" private-key "$2" \
    peer "$3" endpoint "$peer_under:$peer_port" allowed-ips "$peer_v4/32,$peer_v6/128"
  pair_exec "$side" ip link set dev "$ifname" mtu "$PAIR_TUN_MTU"
  pair_exec "$side" ip addr add "$v4/24" dev "$ifname"
  # nodad: the address is usable at once instead of after ~1 s of DAD
  pair_exec "$side" ip -6 addr add "$v6/64" dev "$ifname" nodad
  pair_exec "$side" ip link set dev "$ifname" up
}

pair_up() {
  local template=$1 logdir=${2:-} id=$BASHPID ns key_a key_b
  local veth_a=tdr${id}va veth_b=tdr${id}vb
  [[ -z $PAIR_NS_A ]] || { pair__log "a pair is already up in this shell"; return 1; }
  [[ $template == *%IF%* ]] || { pair__log "daemon template has no %IF%: $template"; return 1; }
  trap pair__on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  PAIR_NS_A=tdr-$id-a PAIR_NS_B=tdr-$id-b
  PAIR_IF_A=tdr${id}a PAIR_IF_B=tdr${id}b
  PAIR_TMP=$(mktemp -d /tmp/tdr-pair.XXXXXX)
  logdir=${logdir:-$PAIR_TMP}
  PAIR_LOG_A=$logdir/daemon-a.log PAIR_LOG_B=$logdir/daemon-b.log

  for ns in "$PAIR_NS_A" "$PAIR_NS_B"; do
    ip netns add "$ns"
    PAIR__NETNS+=("$ns")
    ip -n "$ns" link set lo up
    # no automatic IPv6 link-local addresses (and so no router solicitations):
    # the tunnel carries only our overlay addresses
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.addr_gen_mode=1
  done
  # create the veth inside the namespaces: nothing appears in the root namespace
  ip -n "$PAIR_NS_A" link add "$veth_a" mtu "$PAIR_VETH_MTU" type veth \
    peer name "$veth_b" mtu "$PAIR_VETH_MTU" netns "$PAIR_NS_B"
  pair__underlay a "$veth_a" "$PAIR_UNDER_A"
  pair__underlay b "$veth_b" "$PAIR_UNDER_B"

  pair__start_daemon a "$template" "$PAIR_IF_A" "$PAIR_LOG_A"
  PAIR_PID_A=$PAIR_SPAWNED
  pair__start_daemon b "$template" "$PAIR_IF_B" "$PAIR_LOG_B"
  PAIR_PID_B=$PAIR_SPAWNED

  key_a=$PAIR_TMP/key-a key_b=$PAIR_TMP/key-b
  (umask 077 && wg genkey >"$key_a" && wg genkey >"$key_b")  # wg warns about any laxer umask
  pair__configure a "$key_a" "$(wg pubkey <"$key_b")"
  pair__configure b "$key_b" "$(wg pubkey <"$key_a")"
  pair__log "up: $PAIR_NS_A/$PAIR_IF_A (pid $PAIR_PID_A) <-> $PAIR_NS_B/$PAIR_IF_B (pid $PAIR_PID_B)"
}

pair__underlay() {  # side veth address
  # the underlay is IPv4 only: no IPv6 chatter between the namespaces
  pair_exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
  pair_exec "$1" ip addr add "$3/24" dev "$2"
  pair_exec "$1" ip link set dev "$2" up
}

pair_wait_handshake() {
  local secs=${1:-5} i
  pair_exec a ping -c 1 -W 1 -q "$PAIR_V4_B" >/dev/null 2>&1 || true  # only starts the handshake
  for ((i = 0; i < secs * 10; i++)); do
    # a handshake time of 0 means none yet
    [[ $(pair_exec a wg show "$PAIR_IF_A" latest-handshakes 2>/dev/null | awk '{ print $2 }') == [1-9]* ]] &&
      return 0
    sleep 0.1
  done
  pair__log "no handshake within $secs s"
  return 1
}
