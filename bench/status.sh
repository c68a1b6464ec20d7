#!/usr/bin/env bash
# Figure script: "status GET /v1/jobs/{id}" -- requests/s and p99 of embedd's
# job status endpoint under wrk while a large job is running, against a
# minimal libmicrohttpd server answering one prepared, indexed SELECT per
# request (bench/status_baseline.c) on the same job row of the same database.
#
# Set-up: gemini-sim with batches that stay PENDING for ten minutes (so the
# job stays running), `embedd serve` (its default of 4 HTTP threads, given
# explicitly, and 4 workers), an
# API key, one job of 100,000 one-chunk documents (smoke: 2,000) POSTed and
# left until the workers have submitted every chunk. Then, BENCH_REPEAT
# times, alternately: `wrk -t2 -c32 -d10s --latency` (smoke: -d2s) on embedd's
# GET /v1/jobs/{id} with the bearer key, and on the baseline's GET /jobs/{id}.
# Each side gets a short unrecorded warm-up first. Any non-2xx answer fails
# the script. Also measured once (not part of the figure; in the log and the
# notes): the baseline running embedd's own three statements, unprepared and
# prepared, and one prepared statement with the key remembered
# (status_baseline --mode embedd-sql / embedd-sql-prepared / one-statement).
#
# Env (see bench/run.sh): BENCH_MODE (smoke|full, default full), BENCH_REPEAT
# (default 3), BENCH_PG_ADMIN_URL (a fresh database is created there and
# dropped at the end) or BENCH_DATABASE_URL (used as is) -- with neither, a
# private cluster is started with scripts/pg.sh; EMBEDD_BIN, SIM_BIN,
# BENCH_BUILD (built here if its programs are missing), BENCH_WORK,
# BENCH_ROOT. Prints one JSON line on stdout; logs go to stderr.
set -euo pipefail

root=${BENCH_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
mode=${BENCH_MODE:-full}
repeat=${BENCH_REPEAT:-3}
build=${BENCH_BUILD:-$root/build/release}
embedd=${EMBEDD_BIN:-$build/embedd}
sim=${SIM_BIN:-$build/tools/gemini-sim/gemini-sim}
baseline=$build/bench/status_baseline
work=${BENCH_WORK:-$(mktemp -d /tmp/bench-status.XXXXXX)}
dir="$work/status"
rm -rf "$dir"
mkdir -p "$dir"
log() { echo "status.sh: $*" >&2; }

case "$mode" in
smoke) n_docs=2000 duration=2s ;;
full) n_docs=100000 duration=10s ;;
*) log "BENCH_MODE must be smoke or full"; exit 2 ;;
esac
warmup=1s
threads=4 # HTTP threads of both servers: embedd's default

for tool in wrk jq curl; do
  command -v "$tool" >/dev/null 2>&1 || {
    log "installing $tool"
    apt-get install -y "$tool" >&2 || { apt-get update >&2 && apt-get install -y "$tool" >&2; }
  }
done

if [ ! -x "$baseline" ] || [ ! -x "$embedd" ] || [ ! -x "$sim" ]; then
  log "building embedd, gemini-sim and status_baseline in $build"
  [ -f "$build/CMakeCache.txt" ] ||
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSVC_BUILD_TESTS=OFF >&2
  cmake --build "$build" -j "$(nproc)" --target embedd gemini-sim status_baseline >&2
fi

pids=()
pgdir=""
dropdb=""
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$dropdb" ]; then
    psql -X -q "$BENCH_PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $dropdb WITH (FORCE)" >&2 || true
  fi
  [ -z "$pgdir" ] || bash "$root/scripts/pg.sh" stop "$pgdir" >&2 || true
}
trap cleanup EXIT

# the database: a fresh one when we may create it
if [ -n "${BENCH_PG_ADMIN_URL:-}" ]; then
  dropdb=bench_status_$$
  psql -X -q "$BENCH_PG_ADMIN_URL" -c "CREATE DATABASE $dropdb" >&2
  db=$(sed -E "s#/[^/?]*(\?.*)?\$#/$dropdb\1#" <<<"$BENCH_PG_ADMIN_URL")
elif [ -n "${BENCH_DATABASE_URL:-}" ]; then
  db=$BENCH_DATABASE_URL
else
  pgdir="$dir/pg"
  log "no BENCH_PG_ADMIN_URL or BENCH_DATABASE_URL: starting a private PostgreSQL in $pgdir"
  db=$(bash "$root/scripts/pg.sh" start "$pgdir")
fi

# wait_port FILE PID NAME: the port a process wrote to FILE, within 30 s
wait_port() {
  local deadline=$((SECONDS + 30))
  while [ $SECONDS -lt $deadline ]; do
    [ -s "$1" ] && { cat "$1"; return 0; }
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  log "$3 did not start (log: $dir/$3.log)"
  tail -20 "$dir/$3.log" >&2
  return 1
}

"$sim" --port 0 --port-file "$dir/sim.port" --api-key sim-key --pending-ms 600000 \
  --running-ms 600000 2>"$dir/gemini-sim.log" &
pids+=($!)
sim_port=$(wait_port "$dir/sim.port" $! gemini-sim)

GEMINI_BASE_URL="http://127.0.0.1:$sim_port" GEMINI_API_KEY=sim-key \
  "$embedd" --database-url "$db" --listen 127.0.0.1:0 --port-file "$dir/embedd.port" \
  --http-threads "$threads" serve 2>"$dir/embedd.log" &
pids+=($!)
embedd_port=$(wait_port "$dir/embedd.port" $! embedd)
key=$("$embedd" --database-url "$db" keys create --name bench 2>>"$dir/embedd.log" | head -n1)
base="http://127.0.0.1:$embedd_port"

# the job: n_docs one-chunk documents
log "posting a job of $n_docs documents"
awk -v n="$n_docs" 'BEGIN {
  printf "{\"model\":\"gemini-embedding-001\",\"output_dimensionality\":768,\"documents\":["
  for (i = 0; i < n; i++)
    printf "%s{\"id\":\"doc-%d\",\"text\":\"Document %d of the status benchmark: a short paragraph that fits in one chunk, about rivers, libraries and careful measurements.\"}", (i ? "," : ""), i, i
  printf "]}"
}' >"$dir/job.json"
job=$(curl -sS --fail-with-body -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  --data-binary "@$dir/job.json" "$base/v1/jobs")
id=$(jq -r .id <<<"$job")
total=$(jq -r .stats.chunks.total <<<"$job")
[ "$total" = "$n_docs" ] || { log "job has $total chunks, expected $n_docs: $job"; exit 1; }

# wait until the workers have handed every chunk to the (slow) simulator
deadline=$((SECONDS + 300))
while :; do
  job=$(curl -sS --fail-with-body -H "Authorization: Bearer $key" "$base/v1/jobs/$id")
  pending=$(jq -r .stats.chunks.pending <<<"$job")
  [ "$pending" = 0 ] && break
  [ $SECONDS -lt $deadline ] || { log "chunks still pending after 300 s: $job"; exit 1; }
  sleep 0.5
done
state=$(jq -r .state <<<"$job")
[ "$state" = running ] || { log "job is $state, expected running: $job"; exit 1; }
log "job $id: $total chunks in flight, $(jq -r .stats.batches.submitted <<<"$job") batches submitted, state $state"

# the baseline, on the same database and job row, with embedd's thread count
bl_pid=""
start_baseline() { # start_baseline MODE
  rm -f "$dir/baseline.port"
  "$baseline" --database-url "$db" --threads "$threads" --mode "$1" --port-file "$dir/baseline.port" \
    2>>"$dir/status_baseline.log" &
  bl_pid=$!
  pids+=("$bl_pid")
  bl_port=$(wait_port "$dir/baseline.port" "$bl_pid" status_baseline)
}
stop_baseline() {
  kill "$bl_pid"
  wait "$bl_pid" || { log "status_baseline exited with status $?"; exit 1; }
}

# to_ms VALUE: wrk's latency ("812.00us", "1.23ms", "2.01s") in ms
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) printf "%.3f", substr(v, 1, length(v) - 2) / 1000
    else if (v ~ /ms$/) printf "%.3f", substr(v, 1, length(v) - 2)
    else if (v ~ /m$/) printf "%.3f", substr(v, 1, length(v) - 1) * 60000
    else if (v ~ /s$/) printf "%.3f", substr(v, 1, length(v) - 1) * 1000
    else exit 1
  }'
}

# bench URL DURATION [AUTH]: prints "REQ_PER_S P99_MS" (fails on any non-2xx answer)
bench() {
  local url=$1 d=$2 out
  local -a hdr=()
  [ -z "${3:-}" ] || hdr=(-H "Authorization: Bearer $3")
  curl -sS --fail-with-body "${hdr[@]}" "$url" >/dev/null || { log "$url does not answer 200"; return 1; }
  out=$(wrk -t2 -c32 -d"$d" --latency "${hdr[@]}" "$url")
  echo "$out" >>"$dir/wrk.log"
  if grep -q 'Non-2xx' <<<"$out"; then
    log "non-2xx answers from $url:"
    echo "$out" >&2
    return 1
  fi
  local rps p99
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  if [ -z "$rps" ] || [ -z "$p99" ]; then
    log "could not parse wrk output:"
    echo "$out" >&2
    return 1
  fi
  echo "$rps $(to_ms "$p99")"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

start_baseline minimal
e_url="$base/v1/jobs/$id"
b_url="http://127.0.0.1:$bl_port/jobs/$id"
bench "$e_url" "$warmup" "$key" >/dev/null
bench "$b_url" "$warmup" >/dev/null
e_runs=() b_runs=() e_p99=() b_p99=()
for i in $(seq 1 "$repeat"); do
  r=$(bench "$e_url" "$duration" "$key") # an assignment, so that set -e sees a failure
  read -r rps p99 <<<"$r"
  log "run $i/$repeat embedd:   $rps req/s, p99 $p99 ms"
  e_runs+=("$rps") e_p99+=("$p99")
  r=$(bench "$b_url" "$duration")
  read -r rps p99 <<<"$r"
  log "run $i/$repeat baseline: $rps req/s, p99 $p99 ms"
  b_runs+=("$rps") b_p99+=("$p99")
done
stop_baseline

# where embedd's time goes: its own three statements in the minimal server,
# unprepared and prepared, and one prepared statement with a remembered key
extra=""
for m in embedd-sql embedd-sql-prepared one-statement; do
  start_baseline "$m"
  url="http://127.0.0.1:$bl_port/jobs/$id"
  bench "$url" "$warmup" "$key" >/dev/null
  r=$(bench "$url" "$duration" "$key")
  read -r rps p99 <<<"$r"
  log "baseline --mode $m: $rps req/s, p99 $p99 ms"
  extra="$extra; minimal server --mode $m: $rps req/s, p99 $p99 ms"
  stop_baseline
done

# embedd is still healthy and the job still running after the load
job=$(curl -sS --fail-with-body -H "Authorization: Bearer $key" "$e_url")
[ "$(jq -r .state <<<"$job")" = running ] || { log "job is no longer running: $job"; exit 1; }

e_p99m=$(printf '%s\n' "${e_p99[@]}" | median)
b_p99m=$(printf '%s\n' "${b_p99[@]}" | median)
notes="p99 embedd $e_p99m ms, baseline $b_p99m ms (medians; runs: embedd ${e_p99[*]}, baseline ${b_p99[*]});"
notes="$notes job of $total chunks, all in flight; embedd answers each request with 1 prepared statement (the row version, xmin, of the job under the key; the row, its batch counts and its JSON come from caches while that version is unchanged; the API key from its verified-key cache), the baseline with 1 prepared statement. For reference, the minimal server running the statements embedd used before those caches: 3 statements unprepared (embedd-sql), prepared (embedd-sql-prepared), and job row + batch counts in 1 prepared statement (one-statement), 1 run each$extra"
jq -cn --argjson runs "$(printf '%s\n' "${e_runs[@]}" | jq -s .)" \
  --argjson bruns "$(printf '%s\n' "${b_runs[@]}" | jq -s .)" --arg notes "$notes" \
  '{figure: "status GET /v1/jobs/{id}", unit: "req/s", higher_is_better: true, runs: $runs,
    baseline: "minimal MHD + one indexed SELECT", baseline_runs: $bruns, goal: "≥ 0.8× baseline",
    goal_ratio: 0.8, notes: $notes}'
