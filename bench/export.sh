#!/usr/bin/env bash
# bench/export.sh: the export figures. All vectors of a finished job read back
# through GET /v1/jobs/{id}/results, streamed (Accept: application/x-ndjson)
# and paged (JSON, limit 1000, walking next_cursor), in vectors per second,
# against COPY (SELECT ...) TO STDOUT of the same rows with psql; embedd's RSS
# is sampled every 50 ms during each export.
# The job is the one bench/pipeline.sh left (BENCH_EXPORT_JOB_FILE, its
# job.env) when there is one, else one made here.
# Interface: bench/README.md (one JSON line per figure on stdout).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_sim export
mkdir -p "$BENCH_WORK/export"
if [ -s "${BENCH_EXPORT_JOB_FILE:-}" ]; then
  . "$BENCH_EXPORT_JOB_FILE"
  BENCH_DATABASE_URL=$BENCH_SOURCE_DATABASE_URL
  start_embedd export
  API_KEY=$BENCH_SOURCE_KEY
  id=$BENCH_SOURCE_JOB
  log "exporting job $id of bench/pipeline.sh"
else
  start_embedd export
  n=$([ "$BENCH_MODE" = full ] && echo 100000 || echo 2000)
  f=$BENCH_WORK/export/docs.json
  gen_docs --docs "$n" --doc-bytes 1000 --seed 4 --format json --out "$f"
  read -r code _ < <(post_job "$f" application/json "$BENCH_WORK/export/reply.json")
  [ "$code" = 202 ] || die "POST answered $code"
  id=$(jq -r .id "$BENCH_WORK/export/reply.json")
  st=$(wait_job "$id" 1200) || die "job $id not finished in time"
  [ "$st" = succeeded ] || die "job $id ended $st"
  rm -f "$f"
fi
rows=$(api GET "/v1/jobs/$id" | jq .stats.chunks.succeeded)
dim=$(api GET "/v1/jobs/$id" | jq .settings.output_dimensionality)
[ "$rows" -gt 0 ] || die "job $id has no vectors"

# rss_growth: MiB that embedd's RSS rose above its level before the export
rss_growth() {
  stop_pid "$SAMPLER_PID"
  div "$(($(max_of "$BENCH_WORK/export/rss") - rss0))" 1024
}

# Every timed run writes the body to /dev/null, as the baseline's psql does:
# a pipe into `wc -l` or a 10 MB file written per page would put the
# client's cost into embedd's time and not into the COPY's (measured by hand
# at 100,000 vectors: paged 2.5 s into /dev/null, 3.1 s through a pipe, 3.7 s
# into a file). What the body holds is checked in one untimed pass first (the
# line count, each page's result count and cursor, parsed with jq); each
# timed run must then answer 200 with the same number of bytes (a finished
# job's results do not change) and, paged, walks the cursors that pass was
# given.

# fetch_null URL ARGS...: GET into /dev/null; prints "HTTP_CODE BYTES SECONDS"
fetch_null() {
  local u=$1
  shift
  curl -sS -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' \
    -H "Authorization: Bearer $API_KEY" "$@" "$u"
}

# check_ndjson QUERY: the untimed pass; sets nd_bytes
check_ndjson() {
  local q=$1 f=$BENCH_WORK/export/all.ndjson lines
  api GET "/v1/jobs/$id/results${q:+?$q}" -H 'Accept: application/x-ndjson' -o "$f"
  lines=$(wc -l <"$f")
  [ "$lines" = "$rows" ] || die "NDJSON export ($q) gave $lines lines for $rows results"
  nd_bytes=$(stat -c %s "$f")
  rm -f "$f"
}

# export_ndjson R QUERY: one timed streamed export of every vector (QUERY:
# extra query string); appends vectors/s to nd_runs and the RSS growth to nd_rss
export_ndjson() {
  local r=$1 q=$2 secs growth t0 code bytes
  rss0=$(proc_kb "$EMBEDD_PID" VmRSS)
  rss_sampler "$EMBEDD_PID" "$BENCH_WORK/export/rss"
  t0=$(now)
  read -r code bytes _ < <(fetch_null "$EMBEDD_URL/v1/jobs/$id/results${q:+?$q}" \
    -H 'Accept: application/x-ndjson')
  secs=$(elapsed "$t0")
  growth=$(rss_growth)
  [ "$code" = 200 ] && [ "$bytes" = "$nd_bytes" ] ||
    die "NDJSON export ($q) answered $code with $bytes bytes, the checked pass $nd_bytes"
  nd_runs="$nd_runs $(div "$rows" "$secs")"
  nd_rss="$nd_rss $growth"
  log "NDJSON export $r${q:+ ($q)}: $rows vectors in ${secs}s, RSS +$growth MiB"
}

# check_paged EXTRA: the untimed pass over the pages (limit 1000, walking
# next_cursor); sets pg_cursors (the query of each page) and pg_sizes
check_paged() {
  local extra=$1 got=0 cursor="" q n page=$BENCH_WORK/export/page.json
  pg_cursors=() pg_sizes=()
  while :; do
    q="limit=1000${extra:+&$extra}"
    [ -z "$cursor" ] || q="$q&cursor=$cursor"
    api GET "/v1/jobs/$id/results?$q" -o "$page"
    read -r n cursor <<<"$(jq -r '"\(.results | length) \(.next_cursor // "")"' "$page")"
    got=$((got + n))
    pg_cursors+=("$q")
    pg_sizes+=("$(stat -c %s "$page")")
    [ -n "$cursor" ] || break
  done
  rm -f "$page"
  [ "$got" = "$rows" ] || die "paged export ($extra) gave $got results for $rows"
}

# export_paged R EXTRA: one timed paged export; the time is the sum of the
# requests' times (curl's time_total)
export_paged() {
  local r=$1 extra=$2 total=0 i code bytes t growth
  rss0=$(proc_kb "$EMBEDD_PID" VmRSS)
  rss_sampler "$EMBEDD_PID" "$BENCH_WORK/export/rss"
  for i in "${!pg_cursors[@]}"; do
    read -r code bytes t < <(fetch_null "$EMBEDD_URL/v1/jobs/$id/results?${pg_cursors[$i]}")
    [ "$code" = 200 ] && [ "$bytes" = "${pg_sizes[$i]}" ] ||
      die "page ${pg_cursors[$i]} answered $code with $bytes bytes, the checked pass ${pg_sizes[$i]}"
    total=$(awk -v a="$total" -v b="$t" 'BEGIN { printf "%.6f", a + b }')
  done
  growth=$(rss_growth)
  pg_runs="$pg_runs $(div "$rows" "$total")"
  pg_rss="$pg_rss $growth"
  log "paged export $r${extra:+ ($extra)}: $rows vectors in ${#pg_cursors[@]} pages, ${total}s, RSS +$growth MiB"
}

# the NDJSON stream: available once the server answers it
ctype=$(curl -s -o /dev/null -w '%{content_type}' -H "Authorization: Bearer $API_KEY" \
  -H 'Accept: application/x-ndjson' "$EMBEDD_URL/v1/jobs/$id/results?limit=1")
nd_runs="" nd_rss="" pg_runs="" pg_rss=""
nd_ok=false
[ "${ctype%%;*}" != application/x-ndjson ] || nd_ok=true
if $nd_ok; then
  check_ndjson ""
  for r in $(seq "$BENCH_REPEAT"); do export_ndjson "$r" ""; done
fi
check_paged ""
for r in $(seq "$BENCH_REPEAT"); do export_paged "$r" ""; done
nd_num=$nd_runs pg_num=$pg_runs all_rss="$nd_rss $pg_rss"

# the same with encoding=base64 (each vector as base64 of little-endian float32)
nd_runs="" nd_rss="" pg_runs="" pg_rss=""
if $nd_ok; then
  check_ndjson "encoding=base64"
  for r in $(seq "$BENCH_REPEAT"); do export_ndjson "$r" "encoding=base64"; done
fi
check_paged "encoding=base64"
for r in $(seq "$BENCH_REPEAT"); do export_paged "$r" "encoding=base64"; done
nd_b64=$nd_runs pg_b64=$pg_runs all_rss="$all_rss $nd_rss $pg_rss"

# baseline: the same rows and columns straight out of PostgreSQL
b_runs=""
for r in $(seq "$BENCH_REPEAT"); do
  t0=$(now)
  psql -X -q -v ON_ERROR_STOP=1 "$BENCH_DATABASE_URL" -c "\\copy (SELECT d.doc_id, c.doc_index,
    c.chunk_index, c.char_start, c.char_end, c.text, c.tokens, d.title, d.metadata, c.state,
    c.embedding, c.error FROM chunks c JOIN documents d USING (job_id, doc_index)
    WHERE c.job_id = '$id' ORDER BY c.seq) TO STDOUT" >/dev/null || die "baseline COPY failed"
  secs=$(elapsed "$t0")
  b_runs="$b_runs $(div "$rows" "$secs")"
  log "COPY TO STDOUT $r: $rows rows in ${secs}s"
done

base="COPY (SELECT the same rows and columns) TO STDOUT (psql, text format)"
label=$(printf "%'d" "$rows")
if $nd_ok; then
  figure_json "export, NDJSON streaming ($label vectors, $dim-d)" "vectors/s" true "$nd_num" \
    "$base" "$b_runs" "≥ 0.8× baseline" 0.8 \
    "vectors as JSON numbers; body into /dev/null as the baseline's, checked in an untimed pass"
  figure_json "export, NDJSON streaming, encoding=base64 ($label vectors, $dim-d)" "vectors/s" true \
    "$nd_b64" "$base" "$b_runs" "≥ 1.0× baseline" 1.0 \
    "vectors as base64 of little-endian float32; body into /dev/null, checked in an untimed pass"
else
  unavailable "export, NDJSON streaming" "vectors/s" \
    "not available: Accept: application/x-ndjson answered ${ctype:-nothing}"
fi
figure_json "export, paged JSON ($label vectors, $dim-d, limit 1000)" "vectors/s" true "$pg_num" \
  "$base" "$b_runs" "≥ 0.8× baseline" 0.8 \
  "time = sum of the page requests, each body into /dev/null as the baseline's (the cursors and result counts checked in an untimed pass); vectors as JSON numbers"
figure_json "export, paged JSON, encoding=base64 ($label vectors, $dim-d, limit 1000)" "vectors/s" \
  true "$pg_b64" "$base" "$b_runs" "≥ 1.0× baseline" 1.0 \
  "time = sum of the page requests, each body into /dev/null; vectors as base64 of little-endian float32"
met=true
for g in $all_rss; do
  awk -v g="$g" 'BEGIN { exit !(g < 32) }' || met=false
done
figure_json "export: RSS growth of embedd" "MiB" false "$all_rss" "" "" \
  "flat (< 32 MiB above the level before)" null \
  "largest VmRSS during each export minus VmRSS before it, sampled every 50 ms; NDJSON, paged, NDJSON base64, paged base64" \
  "$met"
