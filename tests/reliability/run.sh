#!/usr/bin/env bash
# The reliability suite in one command (tests/reliability/README.md):
#
#   bash tests/reliability/run.sh          full scale; writes docs/RELIABILITY.md
#   bash tests/reliability/run.sh --ci     the CI scale (what scripts/test.sh runs), no doc
#
# Builds embedd, gemini-sim and the tests, starts a private PostgreSQL, runs
# every scenario (ctest label "reliability") and the libFuzzer targets for a
# bounded time, collects each scenario's figures (JSON lines) and renders
# them. Exits non-zero if any scenario or fuzz target fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

scale=full
fuzz_secs=${EMBEDD_FUZZ_SECONDS:-120}
if [ "${1:-}" = "--ci" ]; then
  scale=ci
  fuzz_secs=${EMBEDD_FUZZ_SECONDS:-15}
elif [ -n "${1:-}" ]; then
  echo "usage: $0 [--ci]" >&2
  exit 2
fi

bash scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
build="$root/build/reliability"
echo "==> [reliability] build ($build)"
cmake -S "$root" -B "$build" -DSVC_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$jobs" >/dev/null

pgdir=$(mktemp -d /tmp/embedd-rel-pg.XXXXXX)
report=$(mktemp /tmp/embedd-rel-report.XXXXXX)
trap 'bash "$root/scripts/pg.sh" stop "$pgdir"; rm -rf "$pgdir"' EXIT
EMBEDD_TEST_DATABASE_URL=$(bash scripts/pg.sh start "$pgdir")
export EMBEDD_TEST_DATABASE_URL EMBEDD_REL_SCALE=$scale EMBEDD_REL_REPORT=$report

status=0
t0=$(date +%s)
echo "==> [reliability] scenarios at $scale scale (one at a time: they measure time and memory)"
(cd "$build" && ctest -L reliability --output-on-failure) || status=1
echo "==> [reliability] libFuzzer targets, ${fuzz_secs} s each"
bash tests/fuzz/run.sh "$fuzz_secs" || status=1
elapsed=$(($(date +%s) - t0))

out=/dev/stdout
if [ "$scale" = full ]; then
  mkdir -p docs
  out=docs/RELIABILITY.md
fi
bash tests/reliability/render.sh "$report" "$status" "$elapsed" \
  "bash tests/reliability/run.sh$([ "$scale" = ci ] && echo ' --ci')" >"$out"
[ "$out" != /dev/stdout ] && echo "==> [reliability] wrote $out"
rm -f "$report"
if [ $status -ne 0 ]; then
  echo "==> [reliability] FAILED" >&2
fi
exit $status
