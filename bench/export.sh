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

# the NDJSON stream: available once the server answers it
ctype=$(curl -s -o /dev/null -w '%{content_type}' -H "Authorization: Bearer $API_KEY" \
  -H 'Accept: application/x-ndjson' "$EMBEDD_URL/v1/jobs/$id/results?limit=1")
nd_runs="" nd_rss=""
if [ "${ctype%%;*}" = application/x-ndjson ]; then
  for r in $(seq "$BENCH_REPEAT"); do
    rss0=$(proc_kb "$EMBEDD_PID" VmRSS)
    rss_sampler "$EMBEDD_PID" "$BENCH_WORK/export/rss"
    t0=$(now)
    lines=$(api GET "/v1/jobs/$id/results" -H 'Accept: application/x-ndjson' | wc -l)
    secs=$(elapsed "$t0")
    growth=$(rss_growth)
    [ "$lines" = "$rows" ] || die "NDJSON export gave $lines lines for $rows results"
    nd_runs="$nd_runs $(div "$rows" "$secs")"
    nd_rss="$nd_rss $growth"
    log "NDJSON export $r: $rows vectors in ${secs}s, RSS +$growth MiB"
  done
fi

# paged JSON: the time is the sum of the requests' times (curl's time_total)
pg_runs="" pg_rss=""
page=$BENCH_WORK/export/page.json
for r in $(seq "$BENCH_REPEAT"); do
  rss0=$(proc_kb "$EMBEDD_PID" VmRSS)
  rss_sampler "$EMBEDD_PID" "$BENCH_WORK/export/rss"
  total=0 got=0 cursor="" pages=0
  while :; do
    q="limit=1000"
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
  [ "$got" = "$rows" ] || die "paged export gave $got results for $rows"
  pg_runs="$pg_runs $(div "$rows" "$total")"
  pg_rss="$pg_rss $growth"
  log "paged export $r: $rows vectors in $pages pages, ${total}s, RSS +$growth MiB"
done
rm -f "$page"

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
if [ -n "$nd_runs" ]; then
  figure_json "export, NDJSON streaming ($label vectors, $dim-d)" "vectors/s" true "$nd_runs" \
    "$base" "$b_runs" "≥ 0.5× baseline" 0.5 "RSS growth of embedd during each export (MiB):$nd_rss"
else
  unavailable "export, NDJSON streaming" "vectors/s" \
    "not available: Accept: application/x-ndjson answered ${ctype:-nothing}"
fi
figure_json "export, paged JSON ($label vectors, $dim-d, limit 1000)" "vectors/s" true "$pg_runs" \
  "$base" "$b_runs" "≥ 0.5× baseline" 0.5 \
  "time = sum of the page requests; RSS growth of embedd during each export (MiB):$pg_rss"
met=true
for g in $nd_rss $pg_rss; do
  awk -v g="$g" 'BEGIN { exit !(g < 32) }' || met=false
done
figure_json "export: RSS growth of embedd" "MiB" false "$nd_rss $pg_rss" "" "" \
  "flat (< 32 MiB above the level before)" null \
  "largest VmRSS during each export minus VmRSS before it, sampled every 50 ms; NDJSON runs first, then paged" \
  "$met"
