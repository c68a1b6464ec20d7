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

# export_ndjson QUERY: one streamed export of every vector (QUERY: extra
# query string); appends vectors/s to nd_runs and the RSS growth to nd_rss
export_ndjson() {
  local r=$1 q=$2 lines secs growth t0
  rss0=$(proc_kb "$EMBEDD_PID" VmRSS)
  rss_sampler "$EMBEDD_PID" "$BENCH_WORK/export/rss"
  t0=$(now)
  lines=$(api GET "/v1/jobs/$id/results${q:+?$q}" -H 'Accept: application/x-ndjson' | wc -l)
  secs=$(elapsed "$t0")
  growth=$(rss_growth)
  [ "$lines" = "$rows" ] || die "NDJSON export ($q) gave $lines lines for $rows results"
  nd_runs="$nd_runs $(div "$rows" "$secs")"
  nd_rss="$nd_rss $growth"
  log "NDJSON export $r${q:+ ($q)}: $rows vectors in ${secs}s, RSS +$growth MiB"
}

# export_paged QUERY: one paged JSON export (limit 1000, walking next_cursor);
# the time is the sum of the requests' times (curl's time_total)
export_paged() {
  local r=$1 extra=$2 total=0 got=0 cursor="" pages=0 q t n growth
  local page=$BENCH_WORK/export/page.json
  rss0=$(proc_kb "$EMBEDD_PID" VmRSS)
  rss_sampler "$EMBEDD_PID" "$BENCH_WORK/export/rss"
  while :; do
    q="limit=1000${extra:+&$extra}"
    [ -z "$cursor" ] || q="$q&cursor=$cursor"
    t=$(curl -sS -o "$page" -w '%{time_total}' -H "Authorization: Bearer $API_KEY" \
      "$EMBEDD_URL/v1/jobs/$id/results?$q")
    total=$(awk -v a="$total" -v b="$t" 'BEGIN { printf "%.6f", a + b }')
    read -r n cursor <<<"$(jq -r '"\(.results | length) \(.next_cursor // "")"' "$page")"
    got=$((got + n))
    pages=$((pages + 1))
    [ -n "$cursor" ] || break
  done
  growth=$(rss_growth)
  [ "$got" = "$rows" ] || die "paged export ($extra) gave $got results for $rows"
  pg_runs="$pg_runs $(div "$rows" "$total")"
  pg_rss="$pg_rss $growth"
  rm -f "$page"
  log "paged export $r${extra:+ ($extra)}: $rows vectors in $pages pages, ${total}s, RSS +$growth MiB"
}

# the NDJSON stream: available once the server answers it
ctype=$(curl -s -o /dev/null -w '%{content_type}' -H "Authorization: Bearer $API_KEY" \
  -H 'Accept: application/x-ndjson' "$EMBEDD_URL/v1/jobs/$id/results?limit=1")
nd_runs="" nd_rss="" pg_runs="" pg_rss=""
nd_ok=false
[ "${ctype%%;*}" != application/x-ndjson ] || nd_ok=true
if $nd_ok; then
  for r in $(seq "$BENCH_REPEAT"); do export_ndjson "$r" ""; done
fi
for r in $(seq "$BENCH_REPEAT"); do export_paged "$r" ""; done
nd_num=$nd_runs pg_num=$pg_runs all_rss="$nd_rss $pg_rss"

# the same with encoding=base64 (each vector as base64 of little-endian float32)
nd_runs="" nd_rss="" pg_runs="" pg_rss=""
if $nd_ok; then
  for r in $(seq "$BENCH_REPEAT"); do export_ndjson "$r" "encoding=base64"; done
fi
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
    "$base" "$b_runs" "≥ 0.8× baseline" 0.8 "vectors as JSON numbers"
  figure_json "export, NDJSON streaming, encoding=base64 ($label vectors, $dim-d)" "vectors/s" true \
    "$nd_b64" "$base" "$b_runs" "≥ 1.0× baseline" 1.0 "vectors as base64 of little-endian float32"
else
  unavailable "export, NDJSON streaming" "vectors/s" \
    "not available: Accept: application/x-ndjson answered ${ctype:-nothing}"
fi
figure_json "export, paged JSON ($label vectors, $dim-d, limit 1000)" "vectors/s" true "$pg_num" \
  "$base" "$b_runs" "≥ 0.8× baseline" 0.8 \
  "time = sum of the page requests; vectors as JSON numbers"
figure_json "export, paged JSON, encoding=base64 ($label vectors, $dim-d, limit 1000)" "vectors/s" \
  true "$pg_b64" "$base" "$b_runs" "≥ 1.0× baseline" 1.0 \
  "time = sum of the page requests; vectors as base64 of little-endian float32"
met=true
for g in $all_rss; do
  awk -v g="$g" 'BEGIN { exit !(g < 32) }' || met=false
done
figure_json "export: RSS growth of embedd" "MiB" false "$all_rss" "" "" \
  "flat (< 32 MiB above the level before)" null \
  "largest VmRSS during each export minus VmRSS before it, sampled every 50 ms; NDJSON, paged, NDJSON base64, paged base64" \
  "$met"
