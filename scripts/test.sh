#!/usr/bin/env bash
# The test command (README Quick start, and what .ci/run calls): installs what
# is missing, builds a normal and an AddressSanitizer+UBSan build with
# -Werror, and runs every test in both. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
status=0

# A private PostgreSQL cluster for the database tests (each test makes its
# own database in it). Under /tmp so that the postgres user can reach it
# whatever the permissions of the checkout's parent folders.
pgdir=$(mktemp -d /tmp/embedd-pg.XXXXXX)
trap 'bash "$root/scripts/pg.sh" stop "$pgdir"; rm -rf "$pgdir"' EXIT
echo "==> starting PostgreSQL in $pgdir"
EMBEDD_TEST_DATABASE_URL=$(bash scripts/pg.sh start "$pgdir")
export EMBEDD_TEST_DATABASE_URL

echo "==> lint"
bash scripts/lint.sh || status=1

run_build() {
  local name=$1
  shift
  local dir="$root/build/$name"
  echo "==> [$name] configure and build"
  cmake -S "$root" -B "$dir" -DSVC_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs" >/dev/null
  echo "==> [$name] tests"
  if ! (cd "$dir" && ctest --output-on-failure -j "$jobs"); then
    status=1
  fi
}

run_build dev -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_build asan -DCMAKE_BUILD_TYPE=Debug -DSVC_SANITIZE=ON

# The threaded programs (embedd serve: HTTP + workers; gemini-sim) run the
# integration tests once more as ThreadSanitizer builds (Criterion itself
# cannot run under TSan, so the test binaries stay normal).
echo "==> [tsan] simulator and service tests against ThreadSanitizer builds"
cmake -S "$root" -B "$root/build/tsan" -DSVC_WERROR=ON -DSVC_TSAN=ON -DSVC_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$root/build/tsan" -j "$jobs" --target gemini-sim embedd >/dev/null
# atexit_sleep_ms=0: TSan otherwise sleeps 1 s in exit(), which the shutdown
# test would count against the service's shutdown deadline.
if ! (cd "$root/build/dev" && TSAN_OPTIONS="atexit_sleep_ms=0 ${TSAN_OPTIONS:-}" SIMH_SIM_BIN="$root/build/tsan/tools/gemini-sim/gemini-sim" \
      TEST_OVERRIDE_EMBEDD_BIN="$root/build/tsan/embedd" \
      ctest --output-on-failure -j "$jobs" -L 'sim|api|reliability'); then
  status=1
fi

# libFuzzer targets (request parsing, chunker, Gemini parsers), briefly: the
# full run is tests/reliability/run.sh.
echo "==> [fuzz] libFuzzer targets, ${EMBEDD_FUZZ_SECONDS:-20} s each"
bash tests/fuzz/run.sh "${EMBEDD_FUZZ_SECONDS:-20}" || status=1

# The benchmark suite at small sizes (no goal enforced), so that it cannot
# rot: every figure script must run and print its figure (bench/README.md).
echo "==> [bench] benchmark suite, smoke run"
bash bench/run.sh --smoke || status=1

# Google's own JavaScript SDK against the simulator (needs Node.js >= 20 and
# the npm registry; said loudly when it cannot run).
echo "==> [sdk] @google/genai against gemini-sim"
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -ge 20 ] && command -v npm >/dev/null 2>&1; then
  bash tests/sdk/run.sh "$root/build/dev/tools/gemini-sim/gemini-sim" || status=1
else
  echo "==> [sdk] SKIPPED: needs Node.js >= 20 with npm (found: ${node_major})"
fi

# The dashboard in headless Chromium: Debian's chromium (scripts/deps.sh)
# driven by npm playwright-core, no browser download. It fails loudly, never
# skips, when it cannot run.
echo "==> [ui] the dashboard in headless Chromium"
if [ "$node_major" -ge 20 ] && command -v npm >/dev/null 2>&1; then
  bash tests/ui/run.sh "$root/build/dev/embedd" "$root/build/dev/tools/gemini-sim/gemini-sim" ||
    status=1
else
  echo "==> [ui] FAILED: needs Node.js >= 20 with npm (found: ${node_major})" >&2
  status=1
fi

# The Docker image and compose stack (tests/docker/run.sh, README "Docker").
# Where no Docker daemon can start it says SKIPPED, and so does the summary.
echo "==> [docker] image, compose stack and health checks"
skipped=""
docker_rc=0
bash tests/docker/run.sh || docker_rc=$?
case $docker_rc in
  0) ;;
  77) skipped="docker (see its SKIPPED line above)" ;;
  *) status=1 ;;
esac

if [ $status -ne 0 ]; then
  echo "==> FAILED" >&2
else
  echo "==> all tests passed (normal and sanitizer builds)"
fi
[ -z "$skipped" ] || echo "==> SKIPPED: $skipped"
exit $status
