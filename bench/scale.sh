#!/usr/bin/env bash
# bench/scale.sh: the scale figures. In one run against one embedd (default
# settings but the bench's fast polls) and gemini-sim with instant batches:
# a job of 100,000 one-chunk documents and one of 1,000,000 (smoke: 2,000 and
# 10,000), both NDJSON (`gen_docs --doc-bytes 300 --format ndjson`), then a
# collection upsert of the 1,000,000-document corpus under a second API key
# (so that no vector is reused: every chunk goes to Google), and a job of
# 1,000 documents (smoke: 100) for the status and results-page times. For each:
# wall time from the POST to succeeded per chunk, embedd's peak RSS (VmHWM,
# reset before each job), database growth per chunk, Google batch creates,
# inline and file batches, bytes received from Google (polls and downloads);
# the job's stats checked exact against its chunk rows; GET /v1/jobs/{id}
# times while the large job runs and after; the first results page and
# /v1/usage after. Interface: bench/README.md.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ "$BENCH_MODE" = full ]; then
  small=100000 large=1000000 tiny=1000 deadline=14400
else
  small=2000 large=10000 tiny=100 deadline=600
fi
doc_bytes=300
dir=$BENCH_WORK/scale
mkdir -p "$dir"

start_sim scale
start_embedd scale
key1=$API_KEY
key2=$("$EMBEDD_BIN" keys create --name bench-scale-2 2>>"$dir/embedd.log" | head -n1) # line 2: its webhook secret

# median_ms FILE: median of the seconds in FILE (one a line), in ms
median_ms() { sort -g "$1" | awk '{ a[NR] = $1 } END { if (NR) printf "%.2f", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) * 1000; else print 0 }'; }
# p99_ms FILE
p99_ms() { sort -g "$1" | awk '{ a[NR] = $1 } END { i = int(NR * 0.99 + 0.999); if (i < 1) i = 1; if (NR) printf "%.2f", a[i] * 1000; else print 0 }'; }

# time_get PATH N OUT: N sequential authenticated GETs of PATH; seconds of each to OUT
time_get() {
  : >"$3"
  for _ in $(seq "$2"); do
    curl -sS -o /dev/null -w '%{http_code} %{time_total}\n' -H "Authorization: Bearer $API_KEY" \
      "$EMBEDD_URL$1" | {
      read -r code t
      [ "$code" = 200 ] || die "GET $1 answered $code"
      echo "$t"
    } >>"$3"
  done
}

dbsize() { psql_db -c "SELECT pg_database_size(current_database())"; }

# run_job NAME FILE: POST FILE (NDJSON) with $API_KEY, wait for the job while
# timing its status GETs; sets JOB_* (id, wall, post, chunks, hwm, creates, ...)
run_job() {
  local name=$1 file=$2 out=$dir/$1.reply.json stats st code secs t0 db0
  stats=$(sim_stats)
  local c0 g0 d0
  c0=$(jq .creates_accepted <<<"$stats")
  g0=$(jq .gets <<<"$stats")
  d0=$(jq .texts_duplicate <<<"$stats")
  db0=$(dbsize)
  psql_db -c "CHECKPOINT" >/dev/null 2>&1 || true
  reset_hwm "$EMBEDD_PID"
  t0=$(now)
  read -r code secs < <(post_job "$file" application/x-ndjson "$out")
  [ "$code" = 202 ] || die "$name: POST answered $code: $(head -c 300 "$out")"
  JOB_ID=$(jq -r .id "$out")
  JOB_POST=$secs
  log "$name: job $JOB_ID accepted after ${secs}s"
  # wait, timing every status GET (the job runs meanwhile)
  : >"$dir/$name.status_running"
  local limit=$((SECONDS + deadline)) line
  while :; do
    line=$(curl -sS -o "$dir/$name.job.json" -w '%{http_code} %{time_total}' \
      -H "Authorization: Bearer $API_KEY" "$EMBEDD_URL/v1/jobs/$JOB_ID")
    [ "${line% *}" = 200 ] || die "$name: status GET answered ${line% *}"
    echo "${line#* }" >>"$dir/$name.status_running"
    st=$(jq -r .state "$dir/$name.job.json")
    case "$st" in succeeded | completed_with_errors | failed | cancelled) break ;; esac
    [ $SECONDS -lt $limit ] || die "$name: job $JOB_ID not finished after ${deadline}s ($st)"
    sleep 0.2
  done
  JOB_WALL=$(elapsed "$t0")
  [ "$st" = succeeded ] || die "$name: job $JOB_ID ended $st"
  JOB_HWM=$(div "$(proc_kb "$EMBEDD_PID" VmHWM)" 1024)
  JOB_CHUNKS=$(jq .stats.chunks.succeeded "$dir/$name.job.json")
  JOB_US=$(awk -v w="$JOB_WALL" -v n="$JOB_CHUNKS" 'BEGIN { printf "%.2f", w / n * 1e6 }')
  stats=$(sim_stats)
  JOB_CREATES=$(($(jq .creates_accepted <<<"$stats") - c0))
  JOB_GETS=$(($(jq .gets <<<"$stats") - g0))
  JOB_DUP=$(($(jq .texts_duplicate <<<"$stats") - d0))
  read -r JOB_BATCHES JOB_FILES JOB_INLINE JOB_RECV JOB_SENT JOB_POLLS <<<"$(psql_db -F ' ' -c "
    SELECT count(*), count(*) FILTER (WHERE transport = 'file'),
      count(*) FILTER (WHERE transport = 'inline'), coalesce(sum(response_bytes), 0),
      coalesce(sum(request_bytes), 0), coalesce(sum(polls), 0)
    FROM batches WHERE job_id = '$JOB_ID'")"
  # the stats against the chunk rows
  local exact
  exact=$(psql_db -c "SELECT j.chunks_total = c.total AND j.chunks_succeeded = c.ok
      AND j.chunks_failed = c.bad AND j.chunks_pending = c.pending
      AND j.chunks_in_flight = c.flight AND j.documents = d.n
    FROM jobs j,
      (SELECT count(*) AS total, count(*) FILTER (WHERE state = 2) AS ok,
        count(*) FILTER (WHERE state = 3) AS bad, count(*) FILTER (WHERE state = 0) AS pending,
        count(*) FILTER (WHERE state = 1) AS flight FROM chunks WHERE job_id = '$JOB_ID') c,
      (SELECT count(*) AS n FROM documents WHERE job_id = '$JOB_ID') d
    WHERE j.id = '$JOB_ID'")
  JOB_EXACT=$([ "$exact" = t ] && echo yes || echo no)
  JOB_DB=$(($(dbsize) - db0))
  JOB_DB_PER=$(div "$JOB_DB" "$JOB_CHUNKS" 0)
  JOB_STATUS_RUN_MED=$(median_ms "$dir/$name.status_running")
  JOB_STATUS_RUN_P99=$(p99_ms "$dir/$name.status_running")
  JOB_STATUS_RUN_N=$(wc -l <"$dir/$name.status_running")
  log "$name: $JOB_CHUNKS chunks in ${JOB_WALL}s (${JOB_US} µs/chunk; POST ${JOB_POST}s), peak RSS ${JOB_HWM} MiB, $JOB_BATCHES batches ($JOB_FILES files, $JOB_INLINE inline), $JOB_CREATES creates, $JOB_GETS GETs, received $JOB_RECV bytes, db +$JOB_DB bytes ($JOB_DB_PER per chunk), stats exact: $JOB_EXACT, status GETs while running: median $JOB_STATUS_RUN_MED ms p99 $JOB_STATUS_RUN_P99 ms ($JOB_STATUS_RUN_N)"
  # texts the simulator saw before: none, but for the upsert of a corpus
  # already embedded under the other key (every text once more, by design)
  [ "$JOB_DUP" = "${EXPECT_DUP:-0}" ] || die "$name: $JOB_DUP texts sent twice (expected ${EXPECT_DUP:-0})"
}

# time_sse N OUT: N sequential reads of the finished job's event stream (it
# answers with its done event, the job's representation, and closes); seconds
# of each to OUT; the done event's succeeded count must be the job's
time_sse() {
  : >"$2"
  local ev=$dir/sse.txt t n
  for _ in $(seq "$1"); do
    t=$(curl -sS -N --max-time 60 -o "$ev" -w '%{time_total}' -H "Authorization: Bearer $API_KEY" \
      -H 'Accept: text/event-stream' "$EMBEDD_URL/v1/jobs/$JOB_ID/events")
    n=$(sed -n '/^event: done/,/^$/p' "$ev" | sed -n 's/^data: //p' | jq .stats.chunks.succeeded)
    [ "$n" = "$JOB_CHUNKS" ] || die "SSE of job $JOB_ID: done event says $n succeeded, not $JOB_CHUNKS"
    echo "$t" >>"$2"
  done
}

# after_job NAME: status, first results page, event stream and usage times of
# the finished job
after_job() {
  time_get "/v1/jobs/$JOB_ID" 40 "$dir/$1.status_after"
  time_get "/v1/jobs/$JOB_ID/results?limit=100" 20 "$dir/$1.page"
  time_sse 10 "$dir/$1.sse"
  time_get "/v1/usage" 10 "$dir/$1.usage"
  JOB_STATUS=$(median_ms "$dir/$1.status_after")
  JOB_PAGE=$(median_ms "$dir/$1.page")
  JOB_SSE=$(median_ms "$dir/$1.sse")
  JOB_USAGE=$(median_ms "$dir/$1.usage")
}

gen() { gen_docs --docs "$1" --doc-bytes "$doc_bytes" --seed "$2" --format ndjson --out "$3"; }

fsmall=$dir/small.ndjson flarge=$dir/large.ndjson ftiny=$dir/tiny.ndjson
gen "$tiny" 31 "$ftiny"
gen "$small" 32 "$fsmall"
gen "$large" 33 "$flarge"

run_job tiny "$ftiny"
after_job tiny
tiny_status=$JOB_STATUS tiny_page=$JOB_PAGE tiny_usage=$JOB_USAGE tiny_sse=$JOB_SSE

run_job small "$fsmall"
after_job small
s_us=$JOB_US s_wall=$JOB_WALL s_post=$JOB_POST s_hwm=$JOB_HWM s_chunks=$JOB_CHUNKS
s_note="$JOB_BATCHES batches ($JOB_FILES file, $JOB_INLINE inline), $JOB_CREATES creates, $JOB_GETS GETs at the simulator, $JOB_RECV bytes received from Google, database +$JOB_DB_PER bytes per chunk, stats exact: $JOB_EXACT"
rm -f "$fsmall"

run_job large "$flarge"
after_job large
l_us=$JOB_US l_wall=$JOB_WALL l_post=$JOB_POST l_hwm=$JOB_HWM l_chunks=$JOB_CHUNKS
l_status=$JOB_STATUS l_page=$JOB_PAGE l_usage=$JOB_USAGE l_db=$JOB_DB_PER l_sse=$JOB_SSE
l_run_med=$JOB_STATUS_RUN_MED l_run_p99=$JOB_STATUS_RUN_P99 l_run_n=$JOB_STATUS_RUN_N
l_creates=$JOB_CREATES l_batches=$JOB_BATCHES l_files=$JOB_FILES l_inline=$JOB_INLINE
l_recv=$JOB_RECV l_sent=$JOB_SENT l_gets=$JOB_GETS l_exact=$JOB_EXACT l_polls=$JOB_POLLS
l_note="$JOB_BATCHES batches ($JOB_FILES file, $JOB_INLINE inline), $JOB_CREATES creates, $JOB_GETS GETs at the simulator, $JOB_RECV bytes received from Google, database +$JOB_DB_PER bytes per chunk, stats exact: $JOB_EXACT"

# the same corpus into a collection of the second key (no vector to reuse)
API_KEY=$key2
coll=$(api POST /v1/collections -H 'Content-Type: application/json' \
  -d '{"name":"scale","output_dimensionality":768}' | jq -r .id)
if [ -z "$coll" ] || [ "$coll" = null ]; then die "could not create a collection"; fi
fcoll=$dir/coll.ndjson
{
  printf '{"collection":"%s","display_name":"scale-upsert"}\n' "$coll"
  tail -n +2 "$flarge"
} >"$fcoll"
rm -f "$flarge"
EXPECT_DUP=$l_chunks run_job upsert "$fcoll"
rm -f "$fcoll"
u_us=$JOB_US u_wall=$JOB_WALL u_post=$JOB_POST u_hwm=$JOB_HWM u_chunks=$JOB_CHUNKS
u_note="$JOB_BATCHES batches ($JOB_FILES file, $JOB_INLINE inline), $JOB_CREATES creates, database +$JOB_DB_PER bytes per chunk, stats exact: $JOB_EXACT"
cdocs=$(api GET "/v1/collections/$coll" | jq .documents.current)
API_KEY=$key1

n_s=$(printf "%'d" "$s_chunks") n_l=$(printf "%'d" "$l_chunks")
bound=$(awk -v n="$l_chunks" 'BEGIN { b = n / 50000; print (b == int(b) ? b : int(b) + 1) }')
hwm_met=$(awk -v a="$l_hwm" -v b="$u_hwm" 'BEGIN { print (a < 256 && b < 256) ? "true" : "false" }')

figure_json "scale: time per chunk, $n_l-document NDJSON job, POST → succeeded" "µs/chunk" false \
  "$l_us" "the $n_s-document job, same run" "$s_us" "≤ 1.2× baseline" 1.2 \
  "one chunk per document, 300-byte texts, 768-d, default settings (file batches of up to 50,000 chunks); $n_l chunks in ${l_wall} s (POST ${l_post} s), $n_s in ${s_wall} s (POST ${s_post} s); large: $l_note; small: $s_note"
figure_json "scale: embedd peak RSS during the $n_l-document job" "MiB" false "$l_hwm" "" "" \
  "< 256 MiB" null "VmHWM reset before each job; the $n_s-document job: $s_hwm MiB; the collection upsert of the same corpus: $u_hwm MiB" \
  "$hwm_met"
figure_json "scale: time per chunk, collection upsert of the $n_l documents" "µs/chunk" false \
  "$u_us" "the $n_l-document job, same run" "$l_us" "–" null \
  "a second API key (nothing reused), collection of 768-d; ${u_chunks} chunks in ${u_wall} s (POST ${u_post} s); peak RSS $u_hwm MiB; the collection holds $cdocs documents after; $u_note"
figure_json "scale: database size per chunk ($n_l-document job)" "bytes" false "$l_db" "" "" "–" \
  null "growth of pg_database_size over the job / chunks: documents, chunks (text, 768 float32, identity), indexes, batches"
figure_json "scale: Google batch creates ($n_l-document job)" "creates" false "$l_creates" "" "" \
  "at the bound (50,000 chunks per file batch)" null \
  "$l_batches batches: $l_files file, $l_inline inline; bound ceil($l_chunks / 50,000) = $bound; $l_gets GETs at the simulator, $l_polls polls recorded; $l_recv bytes received from Google (polls and downloads), $l_sent bytes of requests" \
  "$([ "$l_creates" -le "$bound" ] && echo true || echo false)"
figure_json "scale: GET /v1/jobs/{id} of the $n_l-document job (finished)" "ms" false "$l_status" \
  "the same of a $(printf "%'d" "$tiny")-document job" "$tiny_status" "≤ 1.2× baseline" 1.2 \
  "median of 40 sequential GETs (curl); while the job ran: median $l_run_med ms, p99 $l_run_p99 ms over $l_run_n GETs; stats exact against the chunk rows: $l_exact"
figure_json "scale: first results page (limit 100) of the $n_l-document job" "ms" false "$l_page" \
  "the same of a $(printf "%'d" "$tiny")-document job" "$tiny_page" "≤ 1.2× baseline" 1.2 \
  "median of 20 sequential GETs of /v1/jobs/{id}/results?limit=100"
figure_json "scale: event stream (SSE) of the $n_l-document job (finished)" "ms" false "$l_sse" \
  "the same of a $(printf "%'d" "$tiny")-document job" "$tiny_sse" "≤ 1.2× baseline" 1.2 \
  "median of 10 sequential GET /v1/jobs/{id}/events until the stream's done event (the job's representation, its succeeded count checked) and close"
figure_json "scale: GET /v1/usage with the $n_l-document job" "ms" false "$l_usage" \
  "the same with only a $(printf "%'d" "$tiny")-document job" "$tiny_usage" "–" null \
  "median of 10 sequential GETs (the cost report over the key's jobs)"
