#!/usr/bin/env bash
# bench/search.sh: the search figures. A collection of 100,000 one-chunk
# documents of 768 dimensions (smoke: 20,000), filled through the store's own
# ingest and result paths by bench/search_bench.c, which then measures
# (BENCH_REPEAT times each):
#   - top-10 queries one at a time, the engine's query as served minus HTTP
#     and JSON (the version read, then the scan on both cores), against
#     OpenBLAS cblas_sgemv over the same matrix on both cores followed by the
#     same top-k selection: queries/s, p50 and p99 latency;
#   - two clients at once (OpenBLAS one thread each): queries/s;
#   - every answer compared with the baseline's (ids, order, scores);
#   - loading the collection from PostgreSQL into memory, against COPY (the
#     same SELECT) TO STDOUT (FORMAT binary) read through libpq.
# Also records how GCC vectorised the kernel (-fopt-info-vec on
# service/search/kernel.c). Installs libopenblas-dev when it is missing (root)
# and builds search_bench in the release build.
# Interface: bench/README.md (one JSON line per figure on stdout).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

build=${BENCH_BUILD:-$BENCH_ROOT/build/release}
if ! { [ -f /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h ] ||
  [ -f /usr/include/openblas/cblas.h ] || [ -f /usr/include/cblas.h ]; }; then
  if [ "$(id -u)" -eq 0 ]; then
    log "installing libopenblas-dev"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev >&2 ||
      { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev >&2; }
  fi
fi
cmake -S "$BENCH_ROOT" -B "$build" >/dev/null
cmake --build "$build" -j "$(nproc)" --target search_bench >&2 2>&1 || true
bin=$build/bench/search_bench
if [ ! -x "$bin" ]; then
  unavailable "search: queries/s, 100,000 × 768-d, top-10" "queries/s" \
    "OpenBLAS (libopenblas-dev) is not installed: sudo apt-get install libopenblas-dev"
  exit 0
fi

rows=$([ "$BENCH_MODE" = full ] && echo 100000 || echo 20000)
queries=$([ "$BENCH_MODE" = full ] && echo 300 || echo 60)
size="$([ "$BENCH_MODE" = full ] && echo 100,000 || echo 20,000) × 768-d"
out=$BENCH_WORK/search.out
log "search_bench: $rows rows, $queries queries, $BENCH_REPEAT runs"
"$bin" --url "$BENCH_DATABASE_URL" --rows "$rows" --dims 768 --k 10 --queries "$queries" \
  --repeat "$BENCH_REPEAT" --threads 2 >"$out" 2>"$BENCH_WORK/search.log" ||
  die "search_bench failed (see $BENCH_WORK/search.log)"
vals() { awk -v k="$1" '$1 == k { print $2 }' "$out" | paste -sd' ' -; }
mism=$(vals mismatches | tr ' ' '\n' | awk '{ s += $1 } END { print s + 0 }')
n_checked=$((queries * BENCH_REPEAT * 2))

vec=$(cd "$BENCH_ROOT" && ${CC:-cc} -std=c11 -O3 -fopt-info-vec-optimized -Iservice \
  -c service/search/kernel.c -o /dev/null 2>&1 | grep -c 'loop vectorized' || true)
isa=$(${CC:-cc} -std=c11 -O3 -Iservice -S -o - "$BENCH_ROOT/service/search/kernel.c" 2>/dev/null |
  grep -cE '\b(mulps|addps)\b' || true)
notes="engine p50/p99 $(vals engine_p50_ms | tr ' ' '/') / $(vals engine_p99_ms | tr ' ' '/') ms,"
notes="$notes cblas_sgemv p50/p99 $(vals blas_p50_ms | tr ' ' '/') / $(vals blas_p99_ms | tr ' ' '/') ms"
notes="$notes (per run); $mism of $n_checked answers differ from the baseline's (ids, order,"
notes="$notes scores); kernel.c: $vec loops vectorised by gcc -O3 (-fopt-info-vec), $isa packed"
notes="$notes mulps/addps in its assembly"

figure_json "search: queries/s, $size, top-10, one query at a time" "queries/s" true \
  "$(vals engine_qps)" "cblas_sgemv (OpenBLAS, 2 threads) + the same top-k" "$(vals blas_qps)" \
  "≥ 0.8× baseline" 0.8 "$notes"
figure_json "search: query latency p50, $size, top-10" "ms" false "$(vals engine_p50_ms)" \
  "cblas_sgemv (OpenBLAS, 2 threads) + the same top-k" "$(vals blas_p50_ms)" "–" null \
  "one query at a time, both cores per query; the engine's time includes reading the collection's version"
figure_json "search: query latency p99, $size, top-10" "ms" false "$(vals engine_p99_ms)" \
  "cblas_sgemv (OpenBLAS, 2 threads) + the same top-k" "$(vals blas_p99_ms)" "–" null \
  "$queries queries per run"
figure_json "search: queries/s, $size, top-10, two clients at once" "queries/s" true \
  "$(vals engine2_qps)" "cblas_sgemv (OpenBLAS, 1 thread per client) + the same top-k" \
  "$(vals blas2_qps)" "≥ 0.8× baseline" 0.8 "the engine splits a scan only when a search thread is free"
figure_json "search: answers differing from the baseline" "queries" false "$mism" "" "" "0" null \
  "$n_checked answers compared: document ids, order and scores" "$([ "$mism" = 0 ] && echo true || echo false)"
figure_json "search: load $size from PostgreSQL into memory" "s" false "$(vals load_engine_s)" \
  "COPY (the same SELECT) TO STDOUT (FORMAT binary), read through libpq" "$(vals load_copy_s)" \
  "–" null "the engine's time: a new engine's first query (one REPEATABLE READ snapshot, the COPY parsed as it arrives into arrays that grow, the scan); $(vals bytes | awk '{ printf "%.0f MB", $1 / 1e6 }') in memory"
