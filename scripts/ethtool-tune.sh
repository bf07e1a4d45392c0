#!/usr/bin/env bash
# ethtool-tune.sh -- tune a router's uplink for forwarding UDP (WireGuard) traffic:
# turn rx-udp-gro-forwarding on (the kernel then keeps GRO'd UDP packets whole as it
# forwards them, Linux 6.2+) and rx-gro-list off (fraglist GRO, which would undo it).
#
# Usage: ethtool-tune.sh [--interface NAME] [--dry-run] [--revert]
#   --interface NAME  the interface (default: the one the default route leaves by)
#   --dry-run         print what would change, change nothing
#   --revert          put back what the first run found (kept in the state file)
# The state file is $TUNDRA_ETHTOOL_STATE_DIR/NAME.state (default /var/lib/tundra/ethtool);
# a second run changes nothing and keeps the first run's record. It also reports the
# CPU idle-state limit (max_cstate) without changing it.
#
# Exit status: 0 done or nothing to do; 1 bad usage; 2 a requirement is missing
# (ethtool, Linux >= 6.2, the interface, a default route); 3 ethtool refused a change.
set -euo pipefail

STATE_DIR=${TUNDRA_ETHTOOL_STATE_DIR:-/var/lib/tundra/ethtool}
FEATURES=(rx-udp-gro-forwarding rx-gro-list)
declare -A WANT=([rx-udp-gro-forwarding]=on [rx-gro-list]=off)

die() { echo "ethtool-tune: $2" >&2; exit "$1"; }

iface='' dry_run=0 revert=0
while (($#)); do
  case $1 in
    --interface) [[ $# -ge 2 ]] || die 1 "--interface needs a name"; iface=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --revert) revert=1; shift ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die 1 "unknown argument: $1 (see --help)" ;;
  esac
done

command -v ethtool >/dev/null || die 2 "ethtool is not installed (Debian: apt-get install -y ethtool)"
read -r major minor _ <<<"$(uname -r | tr '.-' '  ')"
if ((major < 6 || (major == 6 && minor < 2))); then
  die 2 "Linux $(uname -r) has no rx-udp-gro-forwarding for this to set; it needs 6.2 or later"
fi
if [[ -z $iface ]]; then
  iface=$(ip -o route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
  [[ -n $iface ]] || iface=$(ip -o -6 route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
  [[ -n $iface ]] || die 2 "no default route to find the interface by: give --interface NAME"
fi
[[ -e /sys/class/net/$iface ]] || die 2 "no interface $iface here"

current() {  # feature: its state now, "on" or "off" ([fixed] dropped)
  ethtool -k "$iface" | awk -v f="$1:" '$1 == f { print $2; exit }'
}

run() {  # the change, or what it would be
  if ((dry_run)); then echo "would run: ethtool -K $iface $1 $2"; return 0; fi
  ethtool -K "$iface" "$1" "$2" 2>/dev/null || die 3 "ethtool refused to set $1 $2 on $iface"
  echo "$iface: $1 $2"
}

state=$STATE_DIR/$iface.state
if ((revert)); then
  [[ -f $state ]] || { echo "$iface: nothing to revert (no $state)"; exit 0; }
  while IFS='=' read -r feature value; do
    [[ $(current "$feature") == "$value" ]] || run "$feature" "$value"
  done <"$state"
  ((dry_run)) || rm -f "$state"
  exit 0
fi

changes=0
for feature in "${FEATURES[@]}"; do
  now=$(current "$feature")
  [[ -n $now ]] || die 2 "$iface has no $feature feature (ethtool -k $iface)"
  [[ $now == "${WANT[$feature]}" ]] || changes=$((changes + 1))
done
if ((changes == 0)); then
  echo "$iface: rx-udp-gro-forwarding on, rx-gro-list off already; nothing to change"
else
  # Record what was found, once: a later run must not overwrite the original with our own settings.
  if ((!dry_run)) && [[ ! -f $state ]]; then
    mkdir -p "$STATE_DIR"
    for feature in "${FEATURES[@]}"; do echo "$feature=$(current "$feature")"; done >"$state"
  fi
  for feature in "${FEATURES[@]}"; do
    [[ $(current "$feature") == "${WANT[$feature]}" ]] || run "$feature" "${WANT[$feature]}"
  done
fi

# CPU idle states: reported, not changed.
limit=''
[[ -r /sys/module/intel_idle/parameters/max_cstate ]] && limit="intel_idle.max_cstate=$(cat /sys/module/intel_idle/parameters/max_cstate)"
cmdline=$(grep -o 'processor.max_cstate=[0-9]*' /proc/cmdline || true)
echo "CPU idle states: ${limit:-no intel_idle limit}${cmdline:+, $cmdline}."
echo "  Deep C-states save power, but on a lightly loaded forwarder every packet may wake a"
echo "  sleeping core, which cuts UDP forwarding throughput (Tailscale measured this); a"
echo "  lower max_cstate (kernel command line) trades power for it. Not changed here."
