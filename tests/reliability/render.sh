#!/usr/bin/env bash
# render.sh REPORT STATUS SECONDS COMMAND: the JSON lines written by the
# reliability scenarios (rel_report) and fuzz targets, as docs/RELIABILITY.md.
set -euo pipefail
report=$1 status=$2 secs=$3 cmd=$4
root=$(cd "$(dirname "$0")/../.." && pwd)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
pgv=$(psql --version 2>/dev/null | awk '{print $3}' || true)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
sum() { jq -s "[.[] | $1 // 0] | add // 0" "$report"; }

cat <<MD
# Reliability

What \`tests/reliability/\` proves, with the figures of its last full run.
Every scenario runs real \`embedd serve\` processes against a real PostgreSQL
and \`gemini-sim\`, and ends with the same audit (\`rel_audit\` in
\`tests/reliability/rel.c\`): every job terminal with stats that add up and
match its chunks; every succeeded chunk has exactly one vector, bit-equal to
the simulator's deterministic vector for its text; every failed chunk has its
reason; Google's accepted batches equal the batches our database knows of,
and the texts Google embedded equal the jobs' \`stats.google.texts_sent\`
(so every resubmission is accounted for, and none happen where none are
legitimate); no batch left open and no lease left held.

- Command: \`$cmd\` (the CI runs the same scenarios at a smaller scale in
  the normal and the AddressSanitizer builds, through \`scripts/test.sh\`)
- Result: **$([ "$status" = 0 ] && echo "all scenarios passed" || echo "FAILURES")**, in ${secs} s
- Commit $commit, $(date -u +%Y-%m-%d), ${cpu:-unknown CPU}, $(nproc) cores, $mem, PostgreSQL ${pgv:-?}

## Totals

| | |
|---|---|
| kill -9 delivered | $(sum '.figures.kills') (crash) + $(jq -s '[.[] | select(.scenario | startswith("2.")) ] | length' "$report") (replica) |
| chunks audited (vectors compared bit for bit) | $(sum '.figures.vectors_checked') |
| chunks lost | $(sum '.figures.lost') |
| texts paid twice without a reason | 0 (asserted in every scenario) |
| legitimate resubmissions (failed/expired/stuck batches, item errors), all accounted | $(sum '.figures.texts_resent') |
| upstream faults injected | $(jq -s '[.[] | .figures | (.faults_http // 0) + (.faults_latency // 0) + (.faults_drop // 0) + (.faults_malformed // 0)] | add // 0' "$report") HTTP/latency/drop/malformed, plus $(sum '.figures.batches_not_succeeded') batches failed/expired/stuck |
| HTTP requests under load | $(sum '.figures.requests') |
| malformed requests | $(jq -s '[.[] | select(.scenario | test("bad input")) | .figures.requests // 0] | add // 0' "$report") |
| fuzz executions | $(sum '.figures.executions') |

## Scenarios

| scenario | checked | result | figures |
|---|---|---|---|
MD
jq -r '"| \(.scenario) | \(.checked) | \(.result) | \(.figures | to_entries | map("\(.key)=\(.value | if type == "object" or type == "array" then tojson else tostring end)") | join(", ")) |"' "$report"
cat <<MD

Scale: $(jq -r -s '[.[] | .scale] | unique | join(", ")' "$report"). Figures are from one run
on a shared 2-core machine; latencies and rates vary between runs, the
audit's results do not.
MD
