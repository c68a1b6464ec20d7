#!/usr/bin/env bash
# bench/render.sh WORK: the report of a bench/run.sh run. Reads WORK/meta.env
# (written by run.sh: mode, repeat, command, scripts, start time, duration,
# load, PostgreSQL URL, failed scripts) and WORK/<script>.jsonl (the figure
# lines); computes per figure the median, spread, baseline median, ratio
# (median / baseline median, or baseline median / median when lower is
# better) and whether the goal is met; writes WORK/figures.jsonl and
# WORK/PERFORMANCE.md, and prints the table on stdout.
set -euo pipefail
work=${1:?usage: render.sh WORK}
. "$work/meta.env"

files=()
for s in $BENCH_SCRIPTS; do
  [ ! -f "$work/$s.jsonl" ] || files+=("$work/$s.jsonl")
done
jq -c --slurp '
  def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
                     else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  .[] | select(type == "object" and has("figure")) |
  (.runs // []) as $r | (.baseline_runs // []) as $b |
  . + {median: ($r | median), min: ($r | min), max: ($r | max), n: ($r | length),
       baseline_median: ($b | median)} |
  .ratio = (if .median == null or .baseline_median == null or .median == 0 then null
            elif .higher_is_better then .median / .baseline_median
            else .baseline_median / .median end) |
  .goal_met = (if has("goal_met") then .goal_met
               elif .ratio == null or .goal_ratio == null then null
               elif .higher_is_better then .ratio >= .goal_ratio
               else .ratio >= 1 / .goal_ratio end)
' "${files[@]}" >"$work/figures.jsonl" 2>/dev/null || : >"$work/figures.jsonl"

table=$(jq -r --slurp '
  def num: if . == null then "–" elif (. | fabs) >= 1000 then (. | round | tostring)
           elif (. | fabs) >= 10 then ((. * 10 | round) / 10 | tostring)
           else ((. * 100 | round) / 100 | tostring) end;
  "| figure | unit | median | spread (min–max) | runs | baseline | baseline median | ratio | goal | met |",
  "|---|---|---|---|---|---|---|---|---|---|",
  (.[] | if .available == false then
      "| \(.figure) | \(.unit) | not available | | 0 | | | | | |"
    else
      "| \(.figure) | \(.unit) | **\(.median | num)** | \(.min | num)–\(.max | num) | \(.n) | \(if (.baseline // "") == "" then "–" else .baseline end) | \(.baseline_median | num) | \(if .ratio == null then "–" else "\(.ratio | num)×" end) | \(.goal // "–") | \(if .goal_met == true then "yes" elif .goal_met == false then "**no**" else "–" end) |"
    end)' "$work/figures.jsonl")
notes=$(jq -r '"- **\(.figure)**: \(.notes // "")"' "$work/figures.jsonl")

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
ram=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
pgver=$(psql -X -qAt "$BENCH_ADMIN_URL" -c "SHOW server_version" 2>/dev/null || echo unknown)
commit=$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$(dirname "$0")" diff --quiet HEAD 2>/dev/null || commit="$commit (with uncommitted changes)"

{
  cat <<EOF
# Performance

Produced by \`bench/run.sh\` (see \`bench/README.md\`): a release build, a private
PostgreSQL, \`gemini-sim\` with instant batches (so Google's time is not
measured), deterministic data from \`bench/gen_docs.c\`, each figure run
$BENCH_REPEAT_USED times; every baseline runs in the same run on the same machine.
Ratio: median / baseline median (baseline median / median when lower is better).

| | |
|---|---|
| command | \`$BENCH_COMMAND\` ($BENCH_MODE_USED mode) |
| date | $BENCH_STARTED, $BENCH_SECONDS s |
| git commit | $commit |
| CPU | $cpu, $(nproc) cores |
| RAM | $ram |
| PostgreSQL | $pgver |
| load average (1/5/15 min) | $BENCH_LOAD_BEFORE before, $BENCH_LOAD_AFTER after (a shared machine: others' work runs too) |

$table

Notes:

$notes
EOF
  [ -z "$BENCH_FAILED" ] ||
    printf '\nScripts that failed or printed no figure:%s (logs in the work folder).\n' "$BENCH_FAILED"
} >"$work/PERFORMANCE.md"
echo "$table"
