#!/usr/bin/env bash
# The dashboard in a real browser: Debian's chromium driven by npm
# playwright-core (no browser download) against a real embedd serve,
# gemini-sim and a fresh database in the PostgreSQL cluster of
# EMBEDD_TEST_DATABASE_URL. Usage:
#   tests/ui/run.sh path/to/embedd path/to/gemini-sim [--screenshot FILE]
# The screenshot (desktop width, a few jobs) goes to build/ui/dashboard.png
# unless FILE says otherwise (docs/dashboard.png is made this way).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
embedd=$(realpath "$1")
sim=$(realpath "$2")
shot=""
if [ "${3:-}" = "--screenshot" ]; then shot=$(realpath -m "$4"); fi
work="$here/../../build/ui"
mkdir -p "$work"
cp "$here/package.json" "$here/ui_check.mjs" "$work/"
cd "$work"
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "ui: $chromium not found (apt-get install chromium; scripts/deps.sh does)" >&2; exit 1; }
[ -n "${EMBEDD_TEST_DATABASE_URL:-}" ] || { echo "ui: EMBEDD_TEST_DATABASE_URL is not set" >&2; exit 1; }
if [ ! -d node_modules/playwright-core ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-package-lock --no-audit --no-fund \
    --loglevel=error >npm.log 2>&1 || { cat npm.log >&2; echo "ui: npm install failed" >&2; exit 1; }
fi

db="embedd_ui_$$"
base_url=${EMBEDD_TEST_DATABASE_URL%/*}
db_url="$base_url/$db"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  psql -q "$base_url/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
psql -q "$base_url/postgres" -c "CREATE DATABASE $db" >/dev/null

wait_port() { # file, what, log
  for _ in $(seq 1 400); do [ -s "$1" ] && return 0; sleep 0.05; done
  echo "ui: $2 did not start" >&2; cat "$3" >&2; exit 1
}
rm -f sim.port svc.port
"$sim" --port 0 --port-file sim.port --api-key ui-key --pending-ms 1500 --running-ms 1500 2>sim.log &
pids+=($!)
wait_port sim.port gemini-sim sim.log
"$embedd" --database-url="$db_url" migrate 2>migrate.log
key=$("$embedd" --database-url="$db_url" keys create --name ui 2>>migrate.log)
key=${key%%$'\n'*} # the first line; the second is the key's webhook secret
"$embedd" --database-url="$db_url" --listen=127.0.0.1:0 --port-file=svc.port \
  --gemini-base-url="http://127.0.0.1:$(cat sim.port)" --gemini-api-key=ui-key \
  --poll-min-ms=100 --poll-max-ms=300 --sync-max-texts=0 --file-batch-max-requests=0 \
  --batch-max-requests=8 --max-open-batches=2 --sse-interval-ms=250 serve 2>svc.log &
pids+=($!)
wait_port svc.port "embedd serve" svc.log

EMBEDD_URL="http://127.0.0.1:$(cat svc.port)" SIM_URL="http://127.0.0.1:$(cat sim.port)" \
  EMBEDD_KEY="$key" CHROMIUM="$chromium" SCREENSHOT="${shot:-$work/dashboard.png}" \
  timeout 180 node ui_check.mjs || { rc=$?; echo "ui: embedd log tail:" >&2; tail -20 svc.log >&2; exit $rc; }
