#!/usr/bin/env bash
# The run command (README Quick start): installs what is missing, builds,
# starts a private PostgreSQL cluster in .run/, migrates, starts gemini-sim
# (unless GEMINI_API_KEY is set, in which case Google is used), starts
# `embedd serve`, creates an API key, submits the sample document set in
# examples/, shows progress until the job ends, prints a summary of the
# results and how to query the API with curl. Everything stops on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
docs=${1:-examples/documents.json}

bash scripts/deps.sh
echo "==> building"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSVC_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
embedd="$root/build/release/embedd"
sim_bin="$root/build/release/tools/gemini-sim/gemini-sim"

mkdir -p .run
pgdir=$(mktemp -d /tmp/embedd-run-pg.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bash "$root/scripts/pg.sh" stop "$pgdir" || true
  rm -rf "$pgdir"
}
trap cleanup EXIT

echo "==> starting PostgreSQL (private cluster in $pgdir)"
export DATABASE_URL
DATABASE_URL=$(bash scripts/pg.sh start "$pgdir")

wait_file() { for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

if [ -z "${GEMINI_API_KEY:-}" ]; then
  rm -f .run/sim.port
  "$sim_bin" --port 0 --port-file .run/sim.port --api-key sim-key \
    --pending-ms 1500 --running-ms 3000 2>.run/gemini-sim.log &
  pids+=($!)
  wait_file .run/sim.port || { cat .run/gemini-sim.log >&2; exit 1; }
  export GEMINI_BASE_URL="http://127.0.0.1:$(cat .run/sim.port)" GEMINI_API_KEY=sim-key
  export EMBEDD_POLL_MIN_MS=500 EMBEDD_POLL_MAX_MS=2000
  echo "==> GEMINI_API_KEY is not set: using gemini-sim at $GEMINI_BASE_URL"
else
  echo "==> using Google at ${GEMINI_BASE_URL:-https://generativelanguage.googleapis.com}"
fi

# the demo shows the batch API even for this small set (small jobs normally go interactive)
export EMBEDD_SYNC_MAX_TEXTS=${EMBEDD_SYNC_MAX_TEXTS:-0}

echo "==> migrating"
"$embedd" migrate 2>>.run/embedd.log
rm -f .run/embedd.port
"$embedd" --listen 127.0.0.1:0 --port-file .run/embedd.port serve 2>>.run/embedd.log &
pids+=($!)
wait_file .run/embedd.port || { tail -20 .run/embedd.log >&2; exit 1; }
base="http://127.0.0.1:$(cat .run/embedd.port)"
key=$("$embedd" keys create --name demo 2>>.run/embedd.log | head -n1)  # line 2: its webhook secret
echo "==> embedd serving at $base (log: .run/embedd.log)"

api() { curl -sS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' "$@"; }

echo "==> submitting $(jq '.documents | length' "$docs") documents from $docs"
job=$(api -X POST "$base/v1/jobs" --data-binary "@$docs")
id=$(jq -r .id <<<"$job")
[ "$id" != null ] || { echo "job refused: $job" >&2; exit 1; }
echo "    job $id: $(jq -r '.stats.chunks.total' <<<"$job") chunks"

state=""
while :; do
  job=$(api "$base/v1/jobs/$id")
  line=$(jq -r '"\(.state): \(.stats.progress_percent)% (\(.stats.chunks.succeeded) ok, \(.stats.chunks.in_flight) in flight, \(.stats.chunks.pending) pending, \(.stats.chunks.failed) failed; batches submitted \(.stats.batches.submitted), done \(.stats.batches.succeeded))"' <<<"$job")
  [ "$line" != "$state" ] && echo "    $(date +%T) $line" && state=$line
  case "$(jq -r .state <<<"$job")" in pending|running) sleep 1 ;; *) break ;; esac
done

echo "==> results"
api "$base/v1/jobs/$id/results?limit=1000" | jq -r '.results[] |
  "  \(.document_id)#\(.chunk_index) [\(.char_start)..\(.char_end)) \(.state): " +
  (if .embedding then "\(.embedding | length) dims, norm \(([.embedding[] | . * .] | add | sqrt) * 1000 | round / 1000), first \(.embedding[0:3])"
   else (.error // "") end)'
echo "    final: $(jq -c '{state, stats: .stats.chunks, batches: .stats.batches}' <<<"$job")"

cat <<EOT

==> query it yourself (while this script runs; it stops everything on exit):
    KEY=$key
    curl -H "Authorization: Bearer \$KEY" $base/v1/jobs
    curl -H "Authorization: Bearer \$KEY" $base/v1/jobs/$id
    curl -H "Authorization: Bearer \$KEY" "$base/v1/jobs/$id/results?limit=10"
    curl -H "Authorization: Bearer \$KEY" -H 'Content-Type: application/json' \\
         --data-binary @$docs $base/v1/jobs
EOT
if [ -t 0 ]; then
  read -r -p "Press Enter to stop embedd, the simulator and PostgreSQL... " _ || true
fi
