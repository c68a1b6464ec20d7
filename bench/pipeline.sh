#!/usr/bin/env bash
# bench/pipeline.sh: the pipeline and Google-cost figures. A job of generated
# one-chunk documents at 768 dimensions goes from POST to succeeded through
# gemini-sim with instant batches; the baseline COPYs the same chunk rows and
# the same vectors into the same tables. The Google cost comes from the
# simulator's /_sim/stats and the batches table.
# Interface: bench/README.md. Also writes $BENCH_WORK/job.env (the database and
# the last job) for bench/export.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ "$BENCH_MODE" = full ]; then
  docs=100000
  repeat=$((BENCH_REPEAT < 2 ? BENCH_REPEAT : 2)) # a run takes minutes: at most 2
else
  docs=2000
  repeat=$BENCH_REPEAT
fi
batch_max_bytes=19000000
batch_max_requests=10000
# a job past --batch-inline-max-bytes travels in file batches, packed to these
file_max_bytes=2000000000
file_max_requests=50000

start_sim pipeline
start_embedd pipeline --batch-max-bytes "$batch_max_bytes" \
  --batch-max-requests "$batch_max_requests" --file-batch-max-bytes "$file_max_bytes" \
  --file-batch-max-requests "$file_max_requests"
f=$BENCH_WORK/pipeline/docs.json
# stat NAME: a counter of the simulator's /_sim/stats
stat() { jq ".$1" <<<"$stats"; }

runs="" hwms="" sim_cpus="" creates_runs="" cost_met=true cost_notes="" id="" rows=0
for r in $(seq "$repeat"); do
  # a new seed per run: texts sent again would be counted as paid twice. The
  # simulator is never reset (Google never reuses a batch name); its counters
  # are read before and after.
  gen_docs --docs "$docs" --doc-bytes 1000 --seed "$((100 + r))" --format json --out "$f"
  stats=$(sim_stats)
  read -r c0 a0 d0 t0x g0 <<<"$(stat creates) $(stat creates_accepted) $(stat texts_duplicate) $(stat texts_received) $(stat gets)"
  reset_hwm "$EMBEDD_PID"
  sim0=$(cpu_s "$SIM_PID")
  t0=$(now)
  read -r code secs < <(post_job "$f" application/json "$BENCH_WORK/pipeline/reply.json")
  [ "$code" = 202 ] || die "POST answered $code: $(head -c 300 "$BENCH_WORK/pipeline/reply.json")"
  id=$(jq -r .id "$BENCH_WORK/pipeline/reply.json")
  st=$(wait_job "$id" 1200) || die "job $id not finished in time (state $st)"
  wall=$(elapsed "$t0")
  [ "$st" = succeeded ] || die "job $id ended $st"
  rows=$(api GET "/v1/jobs/$id" | jq .stats.chunks.succeeded)
  runs="$runs $wall"
  hwms="$hwms $(div "$(proc_kb "$EMBEDD_PID" VmHWM)" 1024 0)"
  sim_cpus="$sim_cpus $(awk -v a="$sim0" -v b="$(cpu_s "$SIM_PID")" 'BEGIN { printf "%.1f", b - a }')"
  log "pipeline run $r: $rows chunks in ${wall}s (POST ${secs}s)"

  # Google cost of this run
  stats=$(sim_stats)
  read -r nb nfile bytes polls <<<"$(psql_db -F ' ' -c "SELECT count(*),
    count(*) FILTER (WHERE transport = 'file'), coalesce(sum(request_bytes), 0),
    coalesce(sum(polls), 0) FROM batches WHERE job_id = '$id'")"
  creates=$(($(stat creates) - c0))
  accepted=$(($(stat creates_accepted) - a0))
  dup=$(($(stat texts_duplicate) - d0))
  texts=$(($(stat texts_received) - t0x))
  gets=$(($(stat gets) - g0))
  lb=$batch_max_bytes lm=$batch_max_requests
  [ "$nfile" = 0 ] || lb=$file_max_bytes lm=$file_max_requests
  bound=$(awk -v b="$bytes" -v l="$lb" -v n="$rows" -v m="$lm" \
    'function ceil(x) { return x == int(x) ? x : int(x) + 1 }
     BEGIN { a = ceil(b / l); c = ceil(n / m); print (a > c ? a : c) }')
  creates_runs="$creates_runs $accepted"
  [ "$dup" = 0 ] && [ "$accepted" = "$bound" ] && [ "$texts" = "$rows" ] || cost_met=false
  cost_notes="$cost_notes${cost_notes:+; }run $r: $accepted creates accepted ($creates sent) for $nb batches ($nfile as files), bound $bound = max(ceil($bytes request bytes / $lb), ceil($rows / $lm)); $texts texts sent, $dup duplicates; $gets GETs at the simulator, polls recorded per batch $(div "$polls" "$nb" 2)"
  log "${cost_notes##*; }"
done
printf 'BENCH_SOURCE_DATABASE_URL=%q\nBENCH_SOURCE_JOB=%q\nBENCH_SOURCE_KEY=%q\n' \
  "$BENCH_DATABASE_URL" "$id" "$API_KEY" >"$BENCH_WORK/job.env"

# Baseline: the rows embedd wrote, re-keyed to a new job, COPYed back in:
# documents and chunks (text, pending), then the vectors into a staging table
# and onto the chunk rows, all in one transaction.
dir=$BENCH_WORK/pipeline/rows
mkdir -p "$dir"
nid=$(psql_db -c "SELECT gen_random_uuid()")
dump_rows "$id" "$nid" "$dir"
psql_db -c "\\copy (SELECT seq, embedding FROM chunks WHERE job_id = '$id' ORDER BY seq) TO '$dir/vectors.copy'"
bruns=""
for r in $(seq "$repeat"); do
  new_job_like "$id" "$nid" >/dev/null
  t0=$(now)
  psql -X -q -v ON_ERROR_STOP=1 -1 "$BENCH_DATABASE_URL" \
    -c "\\copy documents ($DOC_COLUMNS) FROM '$dir/documents.copy'" \
    -c "\\copy chunks ($CHUNK_COLUMNS) FROM '$dir/chunks.copy'" \
    -c "CREATE TEMP TABLE v (seq integer, embedding bytea) ON COMMIT DROP" \
    -c "\\copy v FROM '$dir/vectors.copy'" \
    -c "UPDATE chunks c SET embedding = v.embedding, state = 2 FROM v WHERE c.job_id = '$nid' AND c.seq = v.seq" \
    >/dev/null || die "baseline COPY failed"
  secs=$(elapsed "$t0")
  bruns="$bruns $secs"
  log "pipeline baseline $r: ${secs}s"
  psql_db -c "DELETE FROM jobs WHERE id = '$nid'" >/dev/null
done
rm -f "$dir"/*.copy "$f"

figure_json "pipeline ($(printf "%'d" "$rows") chunks, 768-d, POST → succeeded)" "s" false "$runs" \
  "COPY in of the documents + chunks, COPY in of the vectors (staging table + UPDATE), psql" \
  "$bruns" "≤ 1.5× baseline" 1.5 \
  "gemini-sim with --pending-ms 0 --running-ms 0; embedd --workers 4 --poll-min-ms 20; gemini-sim CPU seconds per run:$sim_cpus"
rss_met=true
for h in $hwms; do
  awk -v h="$h" 'BEGIN { exit !(h < 256) }' || rss_met=false
done
figure_json "pipeline: peak RSS of embedd" "MiB" false "$hwms" "" "" "< 256 MiB" null \
  "VmHWM of embedd from the POST to succeeded (reset before each run)" "$rss_met"
figure_json "Google cost: batch creates for the pipeline job" "creates" false "$creates_runs" "" "" \
  "no duplicate texts; creates at the bound" null "$cost_notes" "$cost_met"
