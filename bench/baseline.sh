#!/usr/bin/env bash
# baseline.sh -- tundra as it was at a git revision, built to benchmark against.
# Exports REV of this repository into DIR with `git archive`, gives it this
# checkout's node_modules (a symlink) when REV's package-lock.json is the same as
# the working tree's, or else runs `npm ci` (which needs the npm registry), then
# compiles the addon and the TypeScript. Prints the daemon template
#   node DIR/dist/src/cli/main.js -f %IF%
# on standard output; progress goes to standard error, the build's output to
# DIR/build.log. To benchmark it beside this checkout:
#   npm run bench -- --impl tundra --impl "tundra@REV=$(bench/baseline.sh REV DIR)"
#
# Usage: bench/baseline.sh REV DIR
#   REV   anything `git rev-parse` takes: a commit, tag or branch
#   DIR   where the build goes; it must not exist, be empty, or hold an earlier
#         build of the same commit, which is then used as it is (nothing rebuilt)
#
# The build is made next to DIR and moved into place only when it is complete,
# so an interrupted or failed build leaves nothing behind.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STAMP=.tundra-baseline  # in DIR: the commit it holds, written last
MAIN=dist/src/cli/main.js
ADDON=build/Release/tundra_native.node
TMP=''
STEP=''  # the running build step: its pid, which is also its process group

die() { printf 'bench:baseline: %s\n' "$*" >&2; exit 1; }
say() { printf 'bench:baseline: %s\n' "$*" >&2; }
usage() { sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

# One step of the build, in the background and in a process group of its own,
# so that an interrupt stops it (npm, node-gyp, make, the compilers) at once.
step() {  # log dir command...
  (cd "$2" && exec setsid "${@:3}") >>"$1" 2>&1 &
  STEP=$!
  wait "$STEP" || { local rc=$?; STEP=''; return "$rc"; }
  STEP=''
}

stop_step() {
  local i
  [[ -n $STEP ]] || return 0
  kill -TERM -- "-$STEP" 2>/dev/null || return 0
  wait "$STEP" 2>/dev/null || true  # reap it: a zombie still counts as a member
  for ((i = 0; i < 50; i++)); do  # up to 5 s for the rest of its session (zombies aside)
    ps -o stat= -s "$STEP" 2>/dev/null | grep -qv '^Z' || return 0
    sleep 0.1
  done
  kill -KILL -- "-$STEP" 2>/dev/null || true
}

cleanup() {
  stop_step
  [[ -z $TMP ]] || rm -rf "$TMP"
}

complete_build() {  # dir commit: true if dir holds a finished build of commit
  [[ -f $1/$STAMP && -f $1/$MAIN && -f $1/$ADDON ]] &&
    [[ $(sed -n 's/^commit=//p' "$1/$STAMP") == "$2" ]]
}

build() {  # commit dir
  local commit=$1 dir=$2 log=$2/build.log
  git -C "$REPO" archive --format=tar "$commit" | tar -x -C "$dir"
  if [[ -e $REPO/node_modules ]] &&
    git -C "$REPO" show "$commit:package-lock.json" 2>/dev/null | cmp -s - "$REPO/package-lock.json"; then
    say "package-lock.json as in $REPO: linking its node_modules"
    ln -s "$(readlink -f "$REPO/node_modules")" "$dir/node_modules"
    # the lifecycle scripts `npm ci` would run: the addon, then the TypeScript
    { step "$log" "$dir" npm run --if-present install && step "$log" "$dir" npm run --if-present build; } ||
      { tail -n 30 "$log" >&2; die "build of $commit failed (log above)"; }
    echo "node_modules=$(readlink -f "$REPO/node_modules") (linked)" >"$dir/$STAMP.tmp"
  else
    say "package-lock.json differs from $REPO's: npm ci"
    step "$log" "$dir" npm ci ||
      { tail -n 30 "$log" >&2; die "npm ci of $commit failed (log above)"; }
    echo "node_modules=npm ci" >"$dir/$STAMP.tmp"
  fi
  [[ -f $dir/$MAIN && -f $dir/$ADDON ]] || die "the build of $commit made no $MAIN or $ADDON"
  node "$dir/$MAIN" --version >/dev/null || die "the build of $commit does not run"
  { echo "commit=$commit"; echo "built=$(date -Is)"; cat "$dir/$STAMP.tmp"; } >"$dir/$STAMP"
  rm -f "$dir/$STAMP.tmp"
}

main() {
  local rev dir parent commit
  [[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
  (($# == 2)) || { usage >&2; exit 2; }
  rev=$1 dir=${2%/}
  commit=$(git -C "$REPO" rev-parse --verify --quiet "$rev^{commit}") ||
    die "not a commit in $REPO: $rev"
  mkdir -p "$(dirname "$dir")"
  parent=$(cd "$(dirname "$dir")" && pwd)
  dir=$parent/$(basename "$dir")
  [[ $dir != *[[:space:]]* ]] || die "DIR must not contain white space (daemon templates are split on it): $dir"

  if complete_build "$dir" "$commit"; then
    say "$dir already holds $commit"
  else
    if [[ -e $dir ]]; then
      [[ -d $dir && -z $(ls -A "$dir") ]] ||
        die "$dir exists and does not hold a build of $commit: choose another DIR or remove it"
    fi
    TMP=$(mktemp -d "$parent/.baseline.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    [[ $rev == "$commit" ]] || rev="$rev ($commit)"
    say "building $rev into $dir"
    build "$commit" "$TMP"
    [[ ! -d $dir ]] || rmdir "$dir"
    mv "$TMP" "$dir"
    TMP=''
STEP=''  # the running build step: its pid, which is also its process group
    say "built $commit"
  fi
  echo "node $dir/$MAIN -f %IF%"
}

main "$@"
