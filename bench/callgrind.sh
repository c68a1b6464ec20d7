#!/usr/bin/env bash
# Figure script: CPU instructions (callgrind Ir) of two hot paths, per 1,000
# chunks. Deterministic, so one run each:
#   - the chunker: bench/cg_chunker splits 1,000 ~1 KB prose documents with
#     the job defaults (service/chunker.h);
#   - vector JSON: bench/cg_vector_json encodes 1,000 stored 768-d float32
#     vectors with the code GET /v1/jobs/{id}/results uses
#     (service/util/jsonw.c jsonw_f32le_array, util/numfmt.c).
# Only the work inside cg_measured() is counted (--toggle-collect), so set-up
# (building the documents or vectors) and process start-up are left out.
#
# Env (see bench/run.sh): BENCH_BUILD (a release build dir; built here if its
# programs are missing), BENCH_ROOT, BENCH_WORK. BENCH_MODE and BENCH_REPEAT
# do not change anything here: the counts are exact. Prints one JSON line per
# figure on stdout; logs go to stderr.
set -euo pipefail

root=${BENCH_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
build=${BENCH_BUILD:-$root/build/release}
work=${BENCH_WORK:-$(mktemp -d /tmp/bench-callgrind.XXXXXX)}
mkdir -p "$work/callgrind"
log() { echo "callgrind.sh: $*" >&2; }

command -v valgrind >/dev/null 2>&1 || {
  log "installing valgrind"
  apt-get install -y valgrind >&2 || { apt-get update >&2 && apt-get install -y valgrind >&2; }
}

if [ ! -x "$build/bench/cg_chunker" ] || [ ! -x "$build/bench/cg_vector_json" ]; then
  log "building cg_chunker and cg_vector_json in $build"
  [ -f "$build/CMakeCache.txt" ] ||
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSVC_BUILD_TESTS=OFF >&2
  cmake --build "$build" -j "$(nproc)" --target cg_chunker cg_vector_json >&2
fi

# callgrind_ir NAME PROGRAM: prints "IR OUTPUT-LINE" (Ir counted in cg_measured)
callgrind_ir() {
  local name=$1 prog=$2 out="$work/callgrind/$1.out"
  rm -f "$out"
  local line
  line=$(valgrind --tool=callgrind --toggle-collect=cg_measured --callgrind-out-file="$out" \
    "$prog" 2>"$work/callgrind/$name.log") || {
    cat "$work/callgrind/$name.log" >&2
    return 1
  }
  local ir
  ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$out")
  if [ -z "$ir" ] || [ "$ir" -le 0 ]; then
    log "$name: no instruction count in $out"
    return 1
  fi
  log "$name: $line; $ir Ir in cg_measured (profile: $out, see callgrind_annotate)"
  echo "$ir $line"
}

figure() { # figure NAME IR_PER_1000 NOTES
  jq -cn --arg f "$1" --argjson ir "$2" --arg notes "$3" \
    '{figure: $f, unit: "Ir / 1,000 chunks", higher_is_better: false, runs: [$ir],
      baseline: null, baseline_runs: [], notes: $notes}'
}

# "IR documents D chunks C bytes B"
r=$(callgrind_ir chunker "$build/bench/cg_chunker") # an assignment, so that set -e sees a failure
read -r ir _ docs _ chunks _ bytes <<<"$r"
per=$(((ir * 1000 + chunks / 2) / chunks))
figure "callgrind chunker" "$per" \
  "chunker_split with the job defaults; $docs documents of ~1 KB prose ($bytes bytes) gave $chunks chunks; $((ir / bytes)) Ir/byte"

# "IR vectors N dims D bytes B"
r=$(callgrind_ir vector_json "$build/bench/cg_vector_json")
read -r ir _ n _ dims _ bytes <<<"$r"
per=$(((ir * 1000 + n / 2) / n))
figure "callgrind vector JSON" "$per" \
  "results_json_vector (numfmt_f32le_array) on $n vectors of $dims float32 ($bytes bytes of JSON); $((ir / (n * dims))) Ir/component"
