#!/usr/bin/env bash
# Fidelity check: Google's official JavaScript SDK (@google/genai) creates,
# polls, lists, cancels and deletes inline and file-based embedding batches,
# uploads and downloads files and calls the interactive endpoint against a
# fresh gemini-sim. Usage: tests/sdk/run.sh path/to/gemini-sim
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sim=$(realpath "$1")
work="$here/../../build/sdk"
mkdir -p "$work"
cp "$here/package.json" "$here/js_sdk_check.mjs" "$work/"
cd "$work"
if [ ! -d node_modules/@google/genai ]; then
  npm install --no-package-lock --no-audit --no-fund --loglevel=error >npm.log 2>&1 || {
    cat npm.log >&2
    echo "sdk: npm install failed" >&2
    exit 1
  }
fi
rm -f sim.port
"$sim" --port 0 --port-file sim.port --api-key sdk-key --pending-ms 30 --running-ms 30 2>sim.log &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do [ -s sim.port ] && break; sleep 0.05; done
[ -s sim.port ] || { echo "sdk: gemini-sim did not start" >&2; cat sim.log >&2; exit 1; }
GEMINI_SIM_URL="http://127.0.0.1:$(cat sim.port)" GEMINI_SIM_KEY=sdk-key \
  timeout 120 node js_sdk_check.mjs 2>&1 | grep -v 'is experimental'
exit "${PIPESTATUS[0]}"
