#!/usr/bin/env bash
# OpenAI's official JavaScript SDK (the openai npm package, pinned in
# package.json) against embedd's /openai/v1 surface: a fresh database in the
# PostgreSQL of EMBEDD_TEST_DATABASE_URL, gemini-sim, and embedd serve.
# Usage: tests/openai/run.sh BUILD_DIR (holding embedd and tools/gemini-sim).
# Exits non-zero on any failed check, and when embedd does not stop cleanly
# (exit status 0, no sanitizer report in its log).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "$1")
embedd="$build/embedd"
sim="$build/tools/gemini-sim/gemini-sim"
: "${EMBEDD_TEST_DATABASE_URL:?set EMBEDD_TEST_DATABASE_URL (scripts/pg.sh start DIR prints it)}"
work="$here/../../build/openai-sdk"
mkdir -p "$work"
cp "$here/package.json" "$here/openai_sdk_check.mjs" "$work/"
cd "$work"
if [ ! -d node_modules/openai ]; then
  npm install --no-package-lock --no-audit --no-fund --loglevel=error >npm.log 2>&1 || {
    cat npm.log >&2
    echo "openai-sdk: npm install failed" >&2
    exit 1
  }
fi

db="embedd_openai_$$"
base=${EMBEDD_TEST_DATABASE_URL%/*}
url="$base/$db"
psql "$base/postgres" -qXc "CREATE DATABASE $db" >/dev/null
sim_pid=""
svc_pid=""
cleanup() {
  [ -n "$svc_pid" ] && kill "$svc_pid" 2>/dev/null && wait "$svc_pid" 2>/dev/null || true
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null || true
  psql "$base/postgres" -qXc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
}
trap cleanup EXIT

rm -f sim.port svc.port
"$sim" --port 0 --port-file sim.port --api-key sim-key --pending-ms 100 --running-ms 200 \
  >/dev/null 2>sim.log &
sim_pid=$!
for _ in $(seq 1 200); do [ -s sim.port ] && break; sleep 0.05; done
[ -s sim.port ] || { echo "openai-sdk: gemini-sim did not start" >&2; cat sim.log >&2; exit 1; }

"$embedd" --database-url="$url" migrate 2>migrate.log
key=$("$embedd" --database-url="$url" keys create --name openai-sdk 2>>migrate.log | head -n 1)
GEMINI_BASE_URL="http://127.0.0.1:$(cat sim.port)" GEMINI_API_KEY=sim-key \
  "$embedd" --database-url="$url" --listen=127.0.0.1:0 --port-file=svc.port \
  --poll-min-ms 100 --poll-max-ms 300 \
  --openai-file-max-bytes=2097152 serve >/dev/null 2>svc.log &
svc_pid=$!
for _ in $(seq 1 200); do [ -s svc.port ] && break; sleep 0.05; done
[ -s svc.port ] || { echo "openai-sdk: embedd did not start" >&2; cat svc.log >&2; exit 1; }

status=0
EMBEDD_URL="http://127.0.0.1:$(cat svc.port)" EMBEDD_KEY="$key" SIM_URL="http://127.0.0.1:$(cat sim.port)" \
  timeout 300 node openai_sdk_check.mjs || status=1

kill -TERM "$svc_pid"
rc=0
wait "$svc_pid" || rc=$?
svc_pid=""
if [ "$rc" -ne 0 ] || grep -qE 'Sanitizer|runtime error:' svc.log; then
  echo "openai-sdk: embedd did not stop cleanly (exit $rc); its log:" >&2
  tail -50 svc.log >&2
  status=1
fi
[ $status -eq 0 ] || { echo "openai-sdk: embedd log in $work/svc.log" >&2; }
exit $status
