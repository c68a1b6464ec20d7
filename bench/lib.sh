# shellcheck shell=bash
# bench/lib.sh: shell helpers shared by the figure scripts (source it).
#
# Expects the figure-script environment (see bench/README.md): BENCH_MODE,
# BENCH_REPEAT, BENCH_DATABASE_URL, BENCH_PG_ADMIN_URL, EMBEDD_BIN, SIM_BIN,
# BENCH_WORK, BENCH_ROOT; GEN_DOCS_BIN is optional (built here if unset).
# Every process started through these helpers is stopped on exit.

: "${BENCH_MODE:=smoke}" "${BENCH_REPEAT:=3}" "${BENCH_WORK:?}" "${BENCH_DATABASE_URL:?}"
: "${EMBEDD_BIN:?}" "${SIM_BIN:?}" "${BENCH_ROOT:?}"
mkdir -p "$BENCH_WORK"

BENCH_PIDS=()
bench_cleanup() {
  local p
  for p in "${BENCH_PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${BENCH_PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
}
trap bench_cleanup EXIT

log() { echo "[$(basename "$0" .sh) ${SECONDS}s] $*" >&2; }
die() {
  log "error: $*"
  exit 1
}
now() { date +%s.%N; }
# elapsed START: seconds since START (a now() value)
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.6f", b - a }'; }
# div A B [DIGITS]: A / B
div() { awk -v a="$1" -v b="$2" -v d="${3:-1}" 'BEGIN { printf "%.*f", d, (b > 0 ? a / b : 0) }'; }

psql_db() { psql -X -q -v ON_ERROR_STOP=1 -At "$BENCH_DATABASE_URL" "$@"; }

# gen_docs ARGS...: the deterministic generator (bench/gen_docs.c)
gen_docs() {
  if [ -z "${GEN_DOCS_BIN:-}" ]; then
    GEN_DOCS_BIN=$BENCH_WORK/gen_docs
    [ -x "$GEN_DOCS_BIN" ] || cc -std=c11 -O2 -o "$GEN_DOCS_BIN" "$BENCH_ROOT/bench/gen_docs.c"
  fi
  "$GEN_DOCS_BIN" "$@"
}

# wait_file FILE SECONDS: until FILE is non-empty
wait_file() {
  local deadline=$((SECONDS + $2))
  while [ ! -s "$1" ]; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

# start_sim NAME [FLAGS...]: gemini-sim with instant batches (unless FLAGS
# say otherwise); sets SIM_URL, SIM_PID
start_sim() {
  local dir=$BENCH_WORK/$1
  shift
  mkdir -p "$dir"
  rm -f "$dir/sim.port"
  "$SIM_BIN" --port 0 --port-file "$dir/sim.port" --api-key bench-key \
    --pending-ms 0 --running-ms 0 --max-connections 256 "$@" 2>"$dir/sim.log" &
  SIM_PID=$!
  BENCH_PIDS+=("$SIM_PID")
  wait_file "$dir/sim.port" 10 || die "gemini-sim did not start (see $dir/sim.log)"
  SIM_URL=http://127.0.0.1:$(cat "$dir/sim.port")
}

# sim_stats: gemini-sim's /_sim/stats JSON
sim_stats() { curl -sf "$SIM_URL/_sim/stats"; }

# start_embedd NAME [FLAGS...]: a release embedd on BENCH_DATABASE_URL against
# the simulator; sets EMBEDD_URL, EMBEDD_PID, API_KEY
start_embedd() {
  local name=$1 dir=$BENCH_WORK/$1
  shift
  mkdir -p "$dir"
  rm -f "$dir/embedd.port"
  export DATABASE_URL=$BENCH_DATABASE_URL GEMINI_API_KEY=bench-key GEMINI_BASE_URL=$SIM_URL
  "$EMBEDD_BIN" migrate >/dev/null 2>>"$dir/embedd.log" || die "embedd migrate failed"
  API_KEY=$("$EMBEDD_BIN" keys create --name "bench-$name" 2>>"$dir/embedd.log" | head -n1)
  "$EMBEDD_BIN" --listen 127.0.0.1:0 --port-file "$dir/embedd.port" --log-level warn \
    --poll-min-ms 20 --poll-max-ms 200 --sync-max-texts 0 --max-body-bytes 4294967296 \
    --connection-timeout-s 600 "$@" serve 2>>"$dir/embedd.log" &
  EMBEDD_PID=$!
  BENCH_PIDS+=("$EMBEDD_PID")
  wait_file "$dir/embedd.port" 30 || die "embedd did not start (see $dir/embedd.log)"
  EMBEDD_URL=http://127.0.0.1:$(cat "$dir/embedd.port")
  local deadline=$((SECONDS + 30))
  until curl -sf "$EMBEDD_URL/readyz" >/dev/null; do
    [ $SECONDS -lt $deadline ] || die "embedd not ready"
    sleep 0.05
  done
}

# stop_pid PID: SIGTERM and wait
stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# api METHOD PATH [CURL ARGS...]: an authenticated request; prints the body
api() {
  local m=$1 p=$2
  shift 2
  curl -sS -X "$m" -H "Authorization: Bearer $API_KEY" "$@" "$EMBEDD_URL$p"
}

# post_job FILE CONTENT_TYPE OUT: POST FILE as a job; writes the reply to OUT
# and prints "HTTP_CODE SECONDS"
post_job() {
  curl -sS -o "$3" -w '%{http_code} %{time_total}\n' -H "Authorization: Bearer $API_KEY" \
    -H "Content-Type: $2" -H 'Expect:' --data-binary "@$1" "$EMBEDD_URL/v1/jobs"
}

# wait_job ID SECONDS: until the job is in a final state; prints the state
wait_job() {
  local id=$1 deadline=$((SECONDS + $2)) st
  while :; do
    st=$(api GET "/v1/jobs/$id" | jq -r .state)
    case "$st" in
    succeeded | completed_with_errors | failed | cancelled)
      echo "$st"
      return 0
      ;;
    esac
    [ $SECONDS -lt $deadline ] || {
      echo "$st"
      return 1
    }
    sleep 0.05
  done
}

# cpu_s PID: user + system CPU seconds used so far by PID
cpu_s() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.1f", ($12 + $13) / hz }' "/proc/$1/stat"
}

# proc_kb PID FIELD: a /proc/PID/status field in kB (VmHWM, VmRSS)
proc_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# reset_hwm PID: restart VmHWM from the current RSS (Linux clear_refs 5)
reset_hwm() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || true; }

# rss_sampler PID OUT: background sampler of VmRSS (kB) every 50 ms into OUT;
# sets SAMPLER_PID (stop it with stop_pid)
rss_sampler() {
  (
    while kill -0 "$1" 2>/dev/null; do
      proc_kb "$1" VmRSS
      sleep 0.05
    done
  ) >"$2" &
  # shellcheck disable=SC2034 # read by the figure scripts
  SAMPLER_PID=$!
}

# max_of FILE: largest number in FILE (one a line)
max_of() { sort -n "$1" | tail -n 1; }

# figure_json FIGURE UNIT HIGHER_IS_BETTER RUNS BASELINE BASELINE_RUNS GOAL GOAL_RATIO NOTES [GOAL_MET]
# prints one figure line; RUNS and BASELINE_RUNS are space-separated numbers,
# GOAL_RATIO a number or "null", GOAL_MET true/false/"" (only for figures without a baseline)
figure_json() {
  local runs bruns
  # shellcheck disable=SC2086 # the runs are space-separated on purpose
  runs=$(printf '%s\n' $4 | jq -sc 'map(select(. != null))')
  # shellcheck disable=SC2086
  bruns=$(printf '%s\n' $6 | jq -sc 'map(select(. != null))')
  jq -nc --arg figure "$1" --arg unit "$2" --argjson hib "$3" --argjson runs "$runs" \
    --arg baseline "$5" --argjson bruns "$bruns" --arg goal "$7" --argjson ratio "$8" \
    --arg notes "$9" --arg met "${10:-}" \
    '{figure: $figure, unit: $unit, higher_is_better: $hib, runs: $runs, baseline: $baseline,
      baseline_runs: $bruns, goal: $goal, goal_ratio: $ratio, notes: $notes}
     + (if $met == "" then {} else {goal_met: ($met == "true")} end)'
}

# unavailable FIGURE UNIT NOTES: a figure that could not be measured
unavailable() {
  jq -nc --arg figure "$1" --arg unit "$2" --arg notes "$3" \
    '{figure: $figure, unit: $unit, higher_is_better: true, runs: [], baseline: "",
      baseline_runs: [], goal: "", goal_ratio: null, notes: $notes, available: false}'
}

# new_job_like ID [NEWID]: a copy of job ID's row under NEWID (default: a
# fresh id), state cancelled so that no worker touches it, for the COPY
# baselines; prints the new id
new_job_like() {
  local nid=${2:-}
  [ -n "$nid" ] || nid=$(psql_db -c "SELECT gen_random_uuid()")
  psql_db -c "INSERT INTO jobs (id, api_key_id, state, display_name, model, task_type,
      output_dimensionality, normalize, priority, max_chars, overlap_chars, documents,
      chunks_total, chunks_pending, token_estimate)
    SELECT '$nid', api_key_id, 'cancelled', 'baseline', model, task_type, output_dimensionality,
      normalize, priority, max_chars, overlap_chars, documents, chunks_total, chunks_total,
      token_estimate FROM jobs WHERE id = '$1'" >/dev/null
  echo "$nid"
}

# The columns embedd writes when it stores a job (store/jobs_ingest.c), all
# of them: the baseline COPYs the very rows embedd stored, not a narrower
# copy of them (the chunk's identity hash, key and JSON lengths, the
# document's chunk range and content hash are about 70 bytes per row).
DOC_COLUMNS="job_id, doc_index, doc_id, title, metadata, chars, first_seq, n_chunks, content_sha256"
CHUNK_COLUMNS="job_id, seq, doc_index, chunk_index, char_start, char_end, tokens, text_json_len, title_json_len, key_id, identity, text"

# dump_rows JOB NEWJOB DIR: the job's documents and chunks (text, state pending,
# no vectors) as COPY text files, re-keyed to NEWJOB
dump_rows() {
  psql_db -c "\\copy (SELECT '$2'::uuid, ${DOC_COLUMNS#job_id, } FROM documents WHERE job_id = '$1' ORDER BY doc_index) TO '$3/documents.copy'"
  psql_db -c "\\copy (SELECT '$2'::uuid, ${CHUNK_COLUMNS#job_id, } FROM chunks WHERE job_id = '$1' ORDER BY seq) TO '$3/chunks.copy'"
}

# copy_rows_in DIR: COPY documents and chunks in, in one transaction (psql);
# prints the seconds it took
copy_rows_in() {
  local t0
  t0=$(now)
  psql -X -q -v ON_ERROR_STOP=1 -1 "$BENCH_DATABASE_URL" \
    -c "\\copy documents ($DOC_COLUMNS) FROM '$1/documents.copy'" \
    -c "\\copy chunks ($CHUNK_COLUMNS) FROM '$1/chunks.copy'" ||
    die "baseline COPY failed"
  elapsed "$t0"
}
