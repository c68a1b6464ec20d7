#!/usr/bin/env bash
# bench/transport.sh: inline against file batches, the measurement behind
# --batch-inline-max-bytes. A job of one-chunk documents of ~1 KB at 768
# dimensions goes through gemini-sim (instant batches) with every batch inline
# (--file-batch-max-requests 0 --batch-max-requests S) or every batch a file
# (--batch-inline-max-bytes 0 --file-batch-max-requests S), for a few batch
# sizes S, in two sweeps: the simulator as fast as it goes (memory, bytes),
# and with 50 ms on every request, standing in for a real network's round
# trips (a file batch makes ~5 more requests: upload start and pieces,
# download, two deletes). Per run: seconds from the end of the POST (NDJSON,
# streamed) to "succeeded", embedd's peak RSS over that span (VmHWM reset when
# the POST returns), and the bytes embedd received from Google for the job's
# batches (batches.response_bytes: polls and downloads) and sent to it
# (request bodies or uploaded files). Interface: bench/README.md.
# Environment (exploration): BENCH_TRANSPORT_SWEEPS, a list of
# "latency_ms:docs:size,size,..." (default below).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ "$BENCH_MODE" = full ]; then
  sweeps=${BENCH_TRANSPORT_SWEEPS:-"0:20000:250,1000,2500,10000 50:5000:25,100,250,1000,2500"}
  repeat=$((BENCH_REPEAT < 2 ? BENCH_REPEAT : 2))
else
  sweeps=${BENCH_TRANSPORT_SWEEPS:-"0:2000:500"}
  repeat=1
fi
mkdir -p "$BENCH_WORK/transport"
f=$BENCH_WORK/transport/docs.ndjson
seed=500

# one_run NAME DOCS: a job through the embedd running now; appends "wall
# hwm_mib bytes_in bytes_out batches" to $BENCH_WORK/transport/NAME.runs
one_run() {
  seed=$((seed + 1)) # new texts every run: texts sent again would count as paid twice
  gen_docs --docs "$2" --doc-bytes 1000 --seed "$seed" --format ndjson --dim 768 --out "$f"
  read -r code _ < <(post_job "$f" application/x-ndjson "$BENCH_WORK/transport/reply.json")
  [ "$code" = 202 ] || die "POST answered $code: $(head -c 300 "$BENCH_WORK/transport/reply.json")"
  reset_hwm "$EMBEDD_PID"
  local t0 id st wall hwm
  t0=$(now)
  id=$(jq -r .id "$BENCH_WORK/transport/reply.json")
  st=$(wait_job "$id" 1200) || die "job $id not finished in time (state $st)"
  wall=$(elapsed "$t0")
  [ "$st" = succeeded ] || die "job $id ended $st"
  hwm=$(div "$(proc_kb "$EMBEDD_PID" VmHWM)" 1024 0)
  read -r nb bin bout <<<"$(psql_db -F ' ' -c "SELECT count(*), coalesce(sum(response_bytes), 0),
    coalesce(sum(request_bytes), 0) FROM batches WHERE job_id = '$id'")"
  echo "$wall $hwm $bin $bout $nb" >>"$BENCH_WORK/transport/$1.runs"
  log "$1: ${wall}s, peak RSS ${hwm} MiB, $nb batches, $bin bytes received, $bout sent"
  psql_db -c "DELETE FROM jobs WHERE id = '$id'" >/dev/null
}

for sweep in $sweeps; do
  IFS=: read -r lat docs sizes <<<"$sweep"
  start_sim "transport-sim-$lat" --latency-ms "$lat"
  for s in ${sizes//,/ }; do
    for t in inline file; do
      if [ "$t" = inline ]; then
        flags=(--file-batch-max-requests 0 --batch-max-requests "$s" --batch-max-bytes 19000000)
      else
        flags=(--batch-inline-max-bytes 0 --file-batch-max-requests "$s")
      fi
      name=$t-$s-$lat
      start_embedd "transport-$name" "${flags[@]}"
      rm -f "$BENCH_WORK/transport/$name.runs"
      for _ in $(seq "$repeat"); do
        one_run "$name" "$docs"
      done
      stop_pid "$EMBEDD_PID"
    done
  done
  stop_pid "$SIM_PID"
  # one figure per (size, transport): wall seconds; RSS and bytes in the notes
  for s in ${sizes//,/ }; do
    for t in inline file; do
      r=$BENCH_WORK/transport/$t-$s-$lat.runs
      walls=$(cut -d' ' -f1 "$r" | tr '\n' ' ')
      notes=$(awk '{ h = h " " $2; i = i " " $3; o = o " " $4; n = $5 }
        END { printf "%s batches; peak RSS (MiB):%s; bytes received from Google:%s; bytes sent:%s", n, h, i, o }' "$r")
      where=$([ "$lat" = 0 ] && echo "" || echo ", $lat ms per request")
      figure_json "transport: $t, $(printf "%'d" "$s") chunks per batch ($(printf "%'d" "$docs") chunks, 768-d$where)" \
        "s" false "$walls" "" "" "" null "$notes"
    done
  done
done
rm -f "$f"
