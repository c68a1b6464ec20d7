#!/usr/bin/env bash
# The run command (README Quick start): installs what is missing, builds,
# starts a private PostgreSQL cluster, migrates, starts gemini-sim (unless
# GEMINI_API_KEY is set, in which case Google is used) and `embedd serve`,
# creates an API key, then runs the demo:
#   1. creates a collection and submits the sample document set into it,
#      showing progress until the job ends, and the vectors it got;
#   2. submits the set again with one document edited, and prints what that
#      second job sent to Google, what it reused and the dollars it saved;
#   3. queries the collection and prints the top 3 matches.
# Then it keeps serving: it prints the dashboard URL, the key and curl lines
# to try, and runs until Ctrl-C, which stops embedd, the simulator and
# PostgreSQL. With --once it stops everything right after the demo (for
# scripts and tests).
#
#   bash scripts/run.sh [--once] [DOCUMENTS.json]
#
# Environment: GEMINI_API_KEY (and GEMINI_BASE_URL) to use Google;
# EMBEDD_LISTEN for the address to serve on (default 127.0.0.1:8080 when that
# port is free, else a free port; --once: a free port); EMBEDD_RUN_DIR for the
# logs and port files (default .run/); EMBEDD_BUILD_DIR to use binaries
# already built there instead of building build/release.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

once=""
docs=examples/documents.json
for a in "$@"; do
  case "$a" in
    --once) once=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option $a (see --help)" >&2; exit 2 ;;
    *) docs=$a ;;
  esac
done
[ -r "$docs" ] || { echo "run.sh: cannot read $docs" >&2; exit 2; }

bash scripts/deps.sh
if [ -n "${EMBEDD_BUILD_DIR:-}" ]; then
  build=$EMBEDD_BUILD_DIR
  echo "==> using the binaries in $build"
else
  build="$root/build/release"
  echo "==> building"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSVC_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
fi
embedd="$build/embedd"
sim_bin="$build/tools/gemini-sim/gemini-sim"

run=${EMBEDD_RUN_DIR:-$root/.run}
mkdir -p "$run"
pgdir=$(mktemp -d /tmp/embedd-run-pg.XXXXXX)
pids=()
serving=""
cleanup() {
  local rc=$?
  trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
  trap - EXIT
  set +e
  [ -n "$serving" ] && echo && echo "==> stopping embedd, the simulator and PostgreSQL"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  bash "$root/scripts/pg.sh" stop "$pgdir" >/dev/null 2>&1
  rm -rf "$pgdir"
  exit "$rc"
}
trap cleanup EXIT
# Ctrl-C while serving is the normal way to stop: exit 0; during the demo: 130
trap 'if [ -n "$serving" ]; then exit 0; else exit 130; fi' INT TERM

echo "==> starting PostgreSQL (private cluster in $pgdir)"
export DATABASE_URL
DATABASE_URL=$(bash scripts/pg.sh start "$pgdir")

wait_file() { for _ in $(seq 1 400); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

if [ -z "${GEMINI_API_KEY:-}" ]; then
  rm -f "$run/sim.port"
  "$sim_bin" --port 0 --port-file "$run/sim.port" --api-key sim-key \
    --pending-ms 1500 --running-ms 3000 2>"$run/gemini-sim.log" &
  pids+=($!)
  wait_file "$run/sim.port" || { cat "$run/gemini-sim.log" >&2; exit 1; }
  export GEMINI_BASE_URL="http://127.0.0.1:$(cat "$run/sim.port")" GEMINI_API_KEY=sim-key
  export EMBEDD_POLL_MIN_MS=500 EMBEDD_POLL_MAX_MS=2000
  simulated=1
  echo "==> GEMINI_API_KEY is not set: using gemini-sim at $GEMINI_BASE_URL"
else
  simulated=""
  echo "==> using Google at ${GEMINI_BASE_URL:-https://generativelanguage.googleapis.com}"
fi

# the demo shows the batch API even for this small set (small jobs normally go interactive)
export EMBEDD_SYNC_MAX_TEXTS=${EMBEDD_SYNC_MAX_TEXTS:-0}

listen=${EMBEDD_LISTEN:-}
if [ -z "$listen" ]; then
  listen=127.0.0.1:0
  if [ -z "$once" ] && ! (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
    listen=127.0.0.1:8080 # a URL that stays the same from one run to the next
  fi
fi

echo "==> migrating"
"$embedd" migrate 2>>"$run/embedd.log"
rm -f "$run/embedd.port"
"$embedd" --listen "$listen" --port-file "$run/embedd.port" serve 2>>"$run/embedd.log" &
embedd_pid=$!
pids+=("$embedd_pid")
wait_file "$run/embedd.port" || { tail -20 "$run/embedd.log" >&2; exit 1; }
base="http://127.0.0.1:$(cat "$run/embedd.port")"
key=$("$embedd" keys create --name demo 2>>"$run/embedd.log" | head -n1) # line 2: its webhook secret
echo "==> embedd serving at $base (log: $run/embedd.log)"

api() { curl -sS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' "$@"; }
usd() { awk -v x="$1" 'BEGIN { printf "$%.6f", x }'; }

# wait_job ID: print progress lines until the job ends; leaves its JSON in $job
wait_job() {
  local state="" line
  while :; do
    job=$(api "$base/v1/jobs/$1")
    line=$(jq -r '"\(.state): \(.stats.progress_percent)% (\(.stats.chunks.succeeded) ok, \(.stats.chunks.reused) reused, \(.stats.chunks.in_flight) in flight, \(.stats.chunks.pending) pending, \(.stats.chunks.failed) failed; batches submitted \(.stats.batches.submitted), done \(.stats.batches.succeeded))"' <<<"$job")
    [ "$line" != "$state" ] && echo "    $(date +%T) $line" && state=$line
    case "$(jq -r .state <<<"$job")" in pending | running) sleep 1 ;; *) break ;; esac
  done
}

# submit JSON-BODY: POST /v1/jobs; leaves the new job's id in $id
submit() {
  local reply
  reply=$(api -X POST "$base/v1/jobs" --data-binary @- <<<"$1")
  id=$(jq -r .id <<<"$reply")
  [ "$id" != null ] || { echo "job refused: $reply" >&2; exit 1; }
}

# 1. a collection, and the sample set into it. Small chunks (200 characters)
# split each sample document into a few, so that editing one part of a
# document leaves its other chunks' vectors to reuse.
n_docs=$(jq '.documents | length' "$docs")
coll_reply=$(api -X POST "$base/v1/collections" -d "$(jq -c '{name: "handbook",
  model: (.model // "gemini-embedding-001"), output_dimensionality: (.output_dimensionality // 768),
  task_type: (.task_type // "RETRIEVAL_DOCUMENT"), chunking: {max_chars: 200, overlap_chars: 0}}' "$docs")")
coll=$(jq -r .id <<<"$coll_reply")
[ "$coll" != null ] || { echo "collection refused: $coll_reply" >&2; exit 1; }
echo "==> collection \"handbook\" $coll (chunks of at most 200 characters)"
echo "==> submitting $n_docs documents from $docs into it"
submit "$(jq -c --arg c "$coll" '. + {collection: $c} | del(.chunking)' "$docs")"
echo "    job $id"
wait_job "$id"
job1=$job
echo "==> vectors"
api "$base/v1/jobs/$id/results?limit=1000" | jq -r '.results[] |
  "  \(.document_id)#\(.chunk_index) [\(.char_start)..\(.char_end)) \(.state): " +
  (if .embedding then "\(.embedding | length) dims, norm \(([.embedding[] | . * .] | add | sqrt) * 1000 | round / 1000), first \(.embedding[0:3])"
   else (.error // "") end)'
jq -r '"    first job: \(.state), \(.stats.chunks.total - .stats.chunks.reused) chunks sent to Google (\(.cost.tokens.batch + .cost.tokens.interactive) tokens)"' <<<"$job1"
echo "    paid $(usd "$(jq .cost.batch <<<"$job1")") at the batch price ($(usd "$(jq .cost.interactive_equivalent <<<"$job1")") interactive)"
[ "$(jq -r .state <<<"$job1")" = succeeded ] || { echo "the first job did not succeed" >&2; exit 1; }

# 2. the same set again, with one document edited: only what changed is sent
edited=$(jq -r '.documents[0].id' "$docs")
echo "==> submitting the set again with document \"$edited\" edited (a sentence added at its end)"
submit "$(jq -c --arg c "$coll" '. + {collection: $c} | del(.chunking)
  | .documents[0].text += " Update: laptops now come with the VPN client installed."' "$docs")"
echo "    job $id"
wait_job "$id"
job2=$job
jq -r '"    documents: \(.documents.updated) updated, \(.documents.unchanged) unchanged (not sent again), \(.documents.new) new",
  "    chunks of the edited document: \(.stats.chunks.total): \(.stats.chunks.total - .stats.chunks.reused) sent to Google, \(.stats.chunks.reused) reused from vectors already stored"' <<<"$job2"
paid2=$(jq .cost.batch <<<"$job2")
echo "    paid $(usd "$paid2"); saved $(usd "$(jq .cost.saved_by_reuse <<<"$job2")") by reuse and $(usd "$(jq .cost.saved_by_batch <<<"$job2")") by the batch price"
echo "    sending the whole set again, as without a collection, would have cost about $(usd "$(jq .cost.batch <<<"$job1")") at the batch price"
[ "$(jq -r .state <<<"$job2")" = succeeded ] || { echo "the second job did not succeed" >&2; exit 1; }

# 3. a query: the text is embedded in the collection's space (interactive API)
question="What should I do if I lose my laptop?"
echo "==> query: \"$question\" (top 3)"
answer=$(api -X POST "$base/v1/collections/$coll/query" \
  -d "$(jq -nc --arg q "$question" '{text: $q, top_k: 3, include: ["text"]}')")
jq -e '.results[0].matches' >/dev/null <<<"$answer" || { echo "query refused: $answer" >&2; exit 1; }
jq -r '.results[0].matches | to_entries[] | .key as $i | .value |
  "    \($i + 1). \(.document_id)#\(.chunk_index)  score \(.score * 10000 | round / 10000)  \"\(.text | gsub("\\s+"; " ") | .[0:70])…\""' <<<"$answer"
[ -n "$simulated" ] && echo "    (gemini-sim's vectors are hashes of the text, not meanings: the order makes sense with Google only)"

cat <<EOT

==> the dashboard: $base/  (paste the key)
==> the key: $key
==> try it:
    KEY=$key
    curl -H "Authorization: Bearer \$KEY" $base/v1/jobs
    curl -H "Authorization: Bearer \$KEY" $base/v1/jobs/$id
    curl -H "Authorization: Bearer \$KEY" "$base/v1/jobs/$id/results?limit=10"
    curl -H "Authorization: Bearer \$KEY" $base/v1/collections/$coll/documents
    curl -H "Authorization: Bearer \$KEY" -H 'Content-Type: application/json' \\
         -d '{"text": "how are expenses reimbursed?", "top_k": 3}' $base/v1/collections/$coll/query
    curl -H "Authorization: Bearer \$KEY" -H 'Content-Type: application/json' \\
         --data-binary @$docs $base/v1/jobs
EOT
if [ -n "$once" ]; then
  echo "==> --once: stopping"
  exit 0
fi
serving=1
echo "==> embedd keeps serving; press Ctrl-C to stop it, the simulator and PostgreSQL"
# wait returns when embedd exits, or at once when a signal comes (the trap exits)
wait "$embedd_pid" || true
serving=""
echo "embedd stopped on its own; see $run/embedd.log" >&2
exit 1
