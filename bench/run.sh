#!/usr/bin/env bash
# bench/run.sh: the benchmark suite, one command.
#
#   bash bench/run.sh            full sizes; writes docs/PERFORMANCE.md
#   bash bench/run.sh --smoke    small sizes, no goal enforced; writes the
#                                report to the work folder only (CI)
#
# Installs what is missing (scripts/deps.sh, wrk), builds build/release,
# starts a private PostgreSQL, runs every figure script (bench/ingest.sh,
# pipeline.sh, export.sh, status.sh, transport.sh, callgrind.sh, search.sh, resubmit.sh,
# scale.sh; each on its own database,
# with its own embedd and gemini-sim), then prints the table: median, spread,
# baseline median, ratio and goal per figure (bench/render.sh). Environment: BENCH_REPEAT (runs
# per figure; default 3, smoke 2), BENCH_ONLY (space-separated script names),
# BENCH_KEEP_WORK=1 (keep the work folder).
# Exit status: smoke fails when a script fails or prints no figure; full
# exits 0 whatever the goals (the table says which are not met).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

mode=full
for a in "$@"; do
  case "$a" in
  --smoke) mode=smoke ;;
  -h | --help)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "run.sh: unknown argument $a" >&2
    exit 2
    ;;
  esac
done
command_line="bash bench/run.sh${*:+ $*}"
[ -z "${BENCH_REPEAT:-}" ] || command_line="BENCH_REPEAT=$BENCH_REPEAT $command_line"
[ -z "${BENCH_ONLY:-}" ] || command_line="BENCH_ONLY='$BENCH_ONLY' $command_line"
repeat=${BENCH_REPEAT:-$([ $mode = smoke ] && echo 2 || echo 3)}
say() { echo "==> $*" >&2; }

say "dependencies"
bash scripts/deps.sh
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
  else
    echo "run.sh: wrk is missing; run: sudo apt-get install wrk" >&2
  fi
fi

say "build/release"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSVC_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

work=$(mktemp -d /tmp/embedd-bench.XXXXXX)
pgdir=$(mktemp -d /tmp/embedd-bench-pg.XXXXXX)
cleanup() {
  bash "$root/scripts/pg.sh" stop "$pgdir" || true
  rm -rf "$pgdir"
  [ "${BENCH_KEEP_WORK:-}" = 1 ] || [ $mode = smoke ] || rm -rf "$work"
}
trap cleanup EXIT
say "PostgreSQL in $pgdir"
pg_url=$(bash scripts/pg.sh start "$pgdir")
admin_url=${pg_url%/*}/postgres

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t_start=$SECONDS
scripts=${BENCH_ONLY:-ingest pipeline export status transport callgrind search resubmit scale}
failed=""
for s in $scripts; do
  f=bench/$s.sh
  if [ ! -f "$f" ]; then
    say "$s: bench/$s.sh not found, skipped"
    failed="$failed $s(missing)"
    continue
  fi
  psql -X -q -v ON_ERROR_STOP=1 "$admin_url" -c "DROP DATABASE IF EXISTS bench_$s" \
    -c "CREATE DATABASE bench_$s" >/dev/null
  mkdir -p "$work/$s"
  say "$s ($mode, $repeat runs)"
  t0=$SECONDS
  rc=0
  BENCH_MODE=$mode BENCH_REPEAT=$repeat BENCH_DATABASE_URL=${pg_url%/*}/bench_$s \
    BENCH_PG_ADMIN_URL=$admin_url EMBEDD_BIN=$root/build/release/embedd \
    SIM_BIN=$root/build/release/tools/gemini-sim/gemini-sim \
    GEN_DOCS_BIN=$root/build/release/bench/gen_docs BENCH_BUILD=$root/build/release \
    BENCH_WORK=$work/$s BENCH_ROOT=$root \
    BENCH_EXPORT_JOB_FILE=$work/pipeline/job.env \
    bash "$f" >"$work/$s.jsonl" 2> >(tee "$work/$s.log" >&2) || rc=$?
  n=$(jq -c . "$work/$s.jsonl" 2>/dev/null | grep -c '"figure"' || true)
  say "$s: exit $rc, $n figure(s), $((SECONDS - t0)) s"
  if [ "$rc" != 0 ] || [ "$n" = 0 ]; then
    failed="$failed $s"
  fi
done
t_total=$((SECONDS - t_start))

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
{
  printf 'BENCH_MODE_USED=%q\nBENCH_REPEAT_USED=%q\nBENCH_COMMAND=%q\nBENCH_SCRIPTS=%q\n' \
    "$mode" "$repeat" "$command_line" "$scripts"
  printf 'BENCH_STARTED=%q\nBENCH_SECONDS=%q\nBENCH_LOAD_BEFORE=%q\nBENCH_LOAD_AFTER=%q\n' \
    "$started" "$t_total" "$load_before" "$load_after"
  printf 'BENCH_ADMIN_URL=%q\nBENCH_FAILED=%q\n' "$admin_url" "$failed"
} >"$work/meta.env"
table=$(bash bench/render.sh "$work")
report=$work/PERFORMANCE.md

if [ $mode = full ]; then
  cp "$report" docs/PERFORMANCE.md
  say "wrote docs/PERFORMANCE.md"
else
  say "smoke report: $report (work folder $work)"
fi
echo
echo "$table"
echo
if [ -n "$failed" ]; then
  say "failed:$failed"
  [ $mode = full ] || exit 1
fi
exit 0
