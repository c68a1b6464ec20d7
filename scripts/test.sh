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

if [ $status -ne 0 ]; then
  echo "==> FAILED" >&2
else
  echo "==> all tests passed (normal and sanitizer builds)"
fi
exit $status
