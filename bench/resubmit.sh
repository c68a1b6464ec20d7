#!/usr/bin/env bash
# bench/resubmit.sh: the collection figure. A corpus of one-chunk documents
# (100,000 in full mode, 2,000 in smoke) goes into a new collection through an
# NDJSON upsert job, POST → succeeded; then the same corpus with 1% of the
# documents edited is submitted again, POST → succeeded. The first submission
# is the baseline measured in the same run; the goal is the resubmission in
# under half its time (gemini-sim with instant batches, so Google's time is
# not in either). The simulator's counters say what the resubmission sent.
# Interface: bench/README.md.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ "$BENCH_MODE" = full ]; then
  docs=100000
  repeat=$((BENCH_REPEAT < 2 ? BENCH_REPEAT : 2))
else
  docs=2000
  repeat=$BENCH_REPEAT
fi
edit_every=100 # 1%

start_sim resubmit
start_embedd resubmit --batch-max-requests 10000 --file-batch-max-requests 50000
dir=$BENCH_WORK/resubmit
first="" again="" sent_runs="" sent_notes="" met=true hwms=""
for r in $(seq "$repeat"); do
  # a new seed and collection per run: nothing of an earlier run can be reused
  coll=$(api POST /v1/collections -H 'Content-Type: application/json' \
    -d "{\"name\":\"bench-$r\",\"output_dimensionality\":768}" | jq -r .id)
  [ -n "$coll" ] && [ "$coll" != null ] || die "collection not created"
  gen_docs --docs "$docs" --doc-bytes 300 --seed "$((500 + r))" --format ndjson --out "$dir/raw.ndjson"
  { echo "{\"collection\":\"$coll\",\"display_name\":\"first-$r\"}"; tail -n +2 "$dir/raw.ndjson"; } >"$dir/v1.ndjson"
  { echo "{\"collection\":\"$coll\",\"display_name\":\"again-$r\"}"
    tail -n +2 "$dir/raw.ndjson" |
      awk -v k="$edit_every" '(NR - 1) % k == 0 { sub(/"text":"Record /, "\"text\":\"Edited record ") } { print }'
  } >"$dir/v2.ndjson"
  rm -f "$dir/raw.ndjson"

  reset_hwm "$EMBEDD_PID"
  t0=$(now)
  read -r code secs < <(post_job "$dir/v1.ndjson" application/x-ndjson "$dir/reply.json")
  [ "$code" = 202 ] || die "POST answered $code: $(head -c 300 "$dir/reply.json")"
  id=$(jq -r .id "$dir/reply.json")
  st=$(wait_job "$id" 1800) || die "job $id not finished (state $st)"
  [ "$st" = succeeded ] || die "job $id ended $st"
  w1=$(elapsed "$t0")
  log "run $r: first submission of $docs documents in ${w1}s (POST ${secs}s)"

  texts0=$(sim_stats | jq .texts_received)
  t0=$(now)
  read -r code secs < <(post_job "$dir/v2.ndjson" application/x-ndjson "$dir/reply.json")
  [ "$code" = 202 ] || die "POST answered $code: $(head -c 300 "$dir/reply.json")"
  id=$(jq -r .id "$dir/reply.json")
  st=$(wait_job "$id" 1800) || die "job $id not finished (state $st)"
  [ "$st" = succeeded ] || die "job $id ended $st"
  w2=$(elapsed "$t0")
  sent=$(($(sim_stats | jq .texts_received) - texts0))
  job=$(api GET "/v1/jobs/$id")
  read -r upd unch saved <<<"$(jq -r '"\(.documents.updated) \(.documents.unchanged) \(.cost.saved_by_batch + .cost.saved_by_reuse)"' <<<"$job")"
  want=$(((docs + edit_every - 1) / edit_every))
  [ "$sent" = "$want" ] && [ "$upd" = "$want" ] || met=false
  log "run $r: resubmission (${want} edited) in ${w2}s (POST ${secs}s): $sent texts sent, $upd updated, $unch unchanged"
  first="$first $w1"
  again="$again $w2"
  sent_runs="$sent_runs $sent"
  hwms="$hwms $(div "$(proc_kb "$EMBEDD_PID" VmHWM)" 1024 0)"
  sent_notes="$sent_notes${sent_notes:+; }run $r: $sent texts sent to Google for $want edited documents, $upd updated, $unch unchanged, saved \$$saved"
  rm -f "$dir/v1.ndjson" "$dir/v2.ndjson"
done

figure_json "collection resubmission ($(printf "%'d" "$docs") one-chunk docs, 1% edited, POST → succeeded)" \
  "s" false "$again" "the first submission of the same corpus into the collection (same run)" "$first" \
  "≤ 0.5× baseline" 0.5 \
  "NDJSON upsert jobs, 768-d; gemini-sim with instant batches; embedd peak RSS (MiB):$hwms; $sent_notes"
figure_json "collection resubmission: texts sent to Google" "texts" false "$sent_runs" "" "" \
  "exactly the edited documents' chunks" null "$sent_notes" "$met"
