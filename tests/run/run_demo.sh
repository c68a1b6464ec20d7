#!/usr/bin/env bash
# The run command end to end (ctest run.demo): scripts/run.sh against this
# build's binaries (EMBEDD_BUILD_DIR), gemini-sim and a private PostgreSQL:
#   1. --once: the demo completes (collection, resubmission with reuse, query)
#      and exits 0 with nothing left running;
#   2. without --once: after the demo it keeps serving (the printed URL
#      answers) until Ctrl-C (SIGINT to its process group, as a terminal
#      sends it), which stops embedd, the simulator and PostgreSQL and exits 0.
# embedd's log must hold no sanitizer report.
set -euo pipefail
src=${EMBEDD_SOURCE_DIR:?}
: "${EMBEDD_BUILD_DIR:?}"
unset GEMINI_API_KEY GEMINI_BASE_URL
export EMBEDD_LISTEN=127.0.0.1:0
work=$(mktemp -d /tmp/embedd-run-test.XXXXXX)
group=""
cleanup() {
  [ -n "$group" ] && kill -TERM -- "-$group" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "run.demo: FAILED: $*" >&2
  for f in "$work"/*.out "$work"/*/embedd.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -40 "$f" >&2; }; done
  exit 1
}
# every process of a run is gone: its simulator, embedd and PostgreSQL cluster
nothing_left() {
  local dir=$1 pg
  pg=$(sed -n 's/^==> starting PostgreSQL (private cluster in \(.*\))$/\1/p' "$work/$2.out")
  [ -n "$pg" ] || fail "$2: no PostgreSQL folder in the output"
  [ ! -e "$pg" ] || fail "$2: $pg was not removed"
  local left
  left=$(procs_with "$dir/" "$pg")
  [ -z "$left" ] || fail "$2: processes left: $left"
}
# the processes whose command line holds one of the strings (from /proc:
# procps may be missing on a minimal Debian)
procs_with() {
  local f cmd s
  for f in /proc/[0-9]*/cmdline; do
    cmd=$({ tr '\0' ' ' <"$f"; } 2>/dev/null) || continue
    for s in "$@"; do
      case "$cmd" in *"$s"*) echo "${f%/cmdline}: $cmd" ;; esac
    done
  done
}
check_demo() {
  local out="$work/$1.out"
  grep -q '^==> collection "handbook"' "$out" || fail "$1: no collection"
  grep -q 'sent to Google, [1-9][0-9]* reused from vectors already stored' "$out" ||
    fail "$1: the resubmission reused nothing"
  grep -q '1 updated, [0-9]* unchanged' "$out" || fail "$1: the edited document is not the only one updated"
  grep -q 'saved \$[0-9.]* by reuse' "$out" || fail "$1: no dollars saved"
  [ "$(grep -c '^    [123]\. .*score' "$out")" -eq 3 ] || fail "$1: the query did not print 3 matches"
  grep -q '^==> the dashboard: http://127.0.0.1:[0-9]*/' "$out" || fail "$1: no dashboard URL"
  if grep -qE 'Sanitizer|runtime error:' "$work/$1/embedd.log"; then fail "$1: sanitizer report"; fi
}

t0=$SECONDS
EMBEDD_RUN_DIR="$work/once" timeout 600 bash "$src/scripts/run.sh" --once >"$work/once.out" 2>&1 ||
  fail "run.sh --once exited with status $?"
check_demo once
grep -q '^==> --once: stopping' "$work/once.out" || fail "once: did not stop after the demo"
nothing_left "$work/once" once
echo "run.demo: --once completed in $((SECONDS - t0)) s"

t0=$SECONDS
set -m # the run gets a process group of its own, like a job in a terminal
EMBEDD_RUN_DIR="$work/serve" bash "$src/scripts/run.sh" >"$work/serve.out" 2>&1 &
pid=$!
group=$pid
set +m
for _ in $(seq 1 600); do
  grep -q 'press Ctrl-C' "$work/serve.out" && break
  kill -0 "$pid" 2>/dev/null || fail "run.sh exited before serving"
  sleep 0.5
done
grep -q 'press Ctrl-C' "$work/serve.out" || fail "run.sh did not reach serving within 300 s"
check_demo serve
url=$(sed -n 's|^==> the dashboard: \(http://127.0.0.1:[0-9]*/\).*|\1|p' "$work/serve.out")
sleep 1
curl -sf "${url}healthz" >/dev/null || fail "nothing answers at $url after the demo"
kill -INT -- "-$group"
rc=0
for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
kill -0 "$pid" 2>/dev/null && fail "run.sh still running 60 s after Ctrl-C"
wait "$pid" || rc=$?
group=""
[ "$rc" -eq 0 ] || fail "run.sh exited with status $rc after Ctrl-C"
grep -q '^==> stopping embedd, the simulator and PostgreSQL' "$work/serve.out" || fail "no stop message"
nothing_left "$work/serve" serve
echo "run.demo: serving until Ctrl-C completed in $((SECONDS - t0)) s"
