#!/usr/bin/env bash
# Build the libFuzzer targets into build/fuzz and run each for a bounded time.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]    (default 30)
#
# Each target runs on a copy of its seed corpus (tests/fuzz/corpus/<target>)
# in a temporary directory, so the repository is never modified. Exits
# non-zero if any target crashed, leaked, timed out or failed a check; the
# input that did is kept in build/fuzz/artifacts/<target>/. With
# EMBEDD_REL_REPORT set, one JSON line per target is appended to that file.
set -euo pipefail

secs=${1:-30}
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS_PER_TARGET]" >&2
  exit 2
fi

root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build/fuzz"
targets=(fuzz_job_request fuzz_chunker fuzz_gemini)
declare -A checked=(
  [fuzz_job_request]="job_request_parse on arbitrary bytes: no crash, leak or UB; on success 1..100 docs (its job_limits) with unique non-empty ids, non-blank NUL-free UTF-8 texts, options in range; on failure status 400/422, code and detail set, nothing left allocated; the streamed parser (job_stream) fed the same body whole, a byte at a time and in random pieces gives the same verdict (status, code, pointer, detail), options and documents"
  [fuzz_chunker]="chunker_split with options from the first bytes: chunks in order on code point boundaries, offsets and code point counts consistent, within max_chars and max_tokens, no whitespace at either end, every non-space byte covered, overlap within overlap_chars and half a chunk; invalid options refused; utf8_valid and the token estimate against reference implementations; invalid UTF-8 never overrun"
  [fuzz_gemini]="gem_parse_operation/list/error/result_line/sync on arbitrary bytes: no crash, leak or UB, strings terminated, an Operation fed to gem_op_stream in small pieces parses exactly as when whole, each result exactly one of a finite embedding or an error, nothing left on failure; gem_build_batch/sync/jsonl_line output for both models re-parsed strictly by json-c with every text, title and key intact (gemini-embedding-2: the task's instruction, title included, before the text and no taskType or title field), sizes equal to gem_batch_overhead + gem_batch_item_size, refused builds leave the buffer unchanged"
)

command -v clang >/dev/null || {
  echo "fuzz: clang is not installed (scripts/deps.sh installs it)" >&2
  exit 1
}
CC=clang cmake -S "$root/tests/fuzz" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFUZZ_WERROR=ON >/dev/null
cmake --build "$build" -j2 >/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

status=0
for t in "${targets[@]}"; do
  corpus="$tmp/$t"
  artifacts="$build/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  cp "$root/tests/fuzz/corpus/$t/"* "$corpus/"
  log="$tmp/$t.log"
  opts=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="$artifacts/")
  rc=0
  "$build/$t" "$corpus" "${opts[@]}" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  execs=${execs:-0}
  files=$(find "$corpus" -type f | wc -l)
  result=pass
  if [ "$rc" -ne 0 ]; then
    result=fail
    status=1
    echo "fuzz: $t FAILED (exit $rc); log tail:" >&2
    tail -n 40 "$log" >&2
    echo "fuzz: reproduce with $build/$t $artifacts/<crash-file>" >&2
  fi
  printf 'fuzz: %-17s %s  %s executions in %s s (%s/s), corpus %s files\n' "$t" "$result" \
    "$execs" "$secs" "$((execs / secs))" "$files"
  if [ -n "${EMBEDD_REL_REPORT:-}" ]; then
    jq -nc --arg s "fuzz $t" --arg c "${checked[$t]}" --arg r "$result" \
      --arg scale "libFuzzer (clang $(clang -dumpversion)) with ASan+UBSan, $secs s on one core, seeded from tests/fuzz/corpus/$t" \
      --argjson secs "$secs" --argjson e "$execs" --argjson n "$files" \
      '{scenario:$s,checked:$c,result:$r,scale:$scale,figures:{seconds:$secs,executions:$e,corpus:$n}}' \
      >>"$EMBEDD_REL_REPORT"
  fi
done
exit $status
