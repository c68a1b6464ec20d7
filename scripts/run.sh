#!/usr/bin/env bash
# The run command (README Quick start): installs what is missing, builds, and
# embeds the sample document set in examples/ through the Gemini async batch
# API: against a local gemini-sim when GEMINI_API_KEY is unset, against
# Google when it is set. It shows the batch's progress until it ends and
# prints a summary of the vectors.
#
# The embedd service itself (REST API, PostgreSQL, workers) is being built
# in issue 3; until it lands this script drives the batch API directly with
# curl and jq, written only from shared/gemini-batch-api.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
docs=${1:-examples/documents.json}

bash scripts/deps.sh
echo "==> building"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSVC_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

mkdir -p .run
sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null; true; }
trap cleanup EXIT

if [ -z "${GEMINI_API_KEY:-}" ]; then
  key=sim-key
  rm -f .run/sim.port
  build/release/tools/gemini-sim/gemini-sim --port 0 --port-file .run/sim.port --api-key "$key" \
    --pending-ms 1500 --running-ms 3000 2>.run/gemini-sim.log &
  sim_pid=$!
  for _ in $(seq 1 100); do [ -s .run/sim.port ] && break; sleep 0.05; done
  base="http://127.0.0.1:$(cat .run/sim.port)"
  poll=1
  echo "==> GEMINI_API_KEY is not set: using gemini-sim at $base"
else
  key=$GEMINI_API_KEY
  base=${GEMINI_BASE_URL:-https://generativelanguage.googleapis.com}
  poll=30
  echo "==> using Google at $base"
fi
ver=${GEMINI_API_VERSION:-v1beta}
model=$(jq -r '.model // "gemini-embedding-001"' "$docs")
api() { curl -sS --fail-with-body -H "x-goog-api-key: $key" -H 'Content-Type: application/json' "$@"; }

# One request per document, keyed by the document id (results are matched by key).
body=$(jq -c --arg model "$model" '{batch: {
  displayName: ("embedd-demo-" + (.display_name // "docs")),
  inputConfig: {requests: {requests: [.documents[] | {
    request: {model: ("models/" + $model), content: {parts: [{text: .text}]},
              taskType: ($ENV.TASK // "RETRIEVAL_DOCUMENT"), title: .title,
              outputDimensionality: 768},
    metadata: {key: .id}}]}}}}' "$docs")

echo "==> submitting $(jq '.documents | length' "$docs") documents from $docs"
op=$(api -X POST "$base/$ver/models/$model:asyncBatchEmbedContent" -d "$body")
name=$(jq -r .name <<<"$op")
echo "    batch $name"

state=""
while :; do
  op=$(api "$base/$ver/$name")
  new=$(jq -r .metadata.state <<<"$op")
  [ "$new" != "$state" ] && echo "    $(date +%T) $new" && state=$new
  case "$state" in
    BATCH_STATE_SUCCEEDED|BATCH_STATE_FAILED|BATCH_STATE_CANCELLED|BATCH_STATE_EXPIRED) break ;;
  esac
  sleep "$poll"
done

if [ "$state" != BATCH_STATE_SUCCEEDED ]; then
  echo "batch ended $state: $(jq -c '.error // {}' <<<"$op")" >&2
  exit 1
fi

echo "==> results"
jq -r '(.response.inlinedResponses.inlinedResponses // .metadata.output.inlinedResponses.inlinedResponses)[]
  | if .error then "  \(.metadata.key // "?"): failed: \(.error.message)"
    else (.response.embedding.values) as $v
      | "  \(.metadata.key // "?"): \($v | length) dims, tokens \(.response.tokenCount // "?"), norm \(([$v[] | . * .] | add | sqrt) * 1000 | round / 1000), first \($v[0:3])"
    end' <<<"$op"
echo "    stats: $(jq -c .metadata.batchStats <<<"$op")"

echo
echo "==> query it yourself:"
echo "    curl -H 'x-goog-api-key: \$KEY' $base/$ver/$name | jq .metadata.state"
if [ -n "$sim_pid" ]; then
  echo "    (the simulator stops with this script; start one with:"
  echo "     build/release/tools/gemini-sim/gemini-sim --api-key sim-key, then port 8089)"
fi
