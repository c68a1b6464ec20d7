#!/usr/bin/env bash
# The Docker test (a step of scripts/test.sh; README, "Docker"). As root on
# Debian 12: installs docker.io, docker-compose and debootstrap if missing,
# starts dockerd if none runs (and stops it again at the end), makes the
# debian:12-slim base locally when it is missing (tests/docker/debian-base.sh),
# builds embedd:local from docker/Dockerfile and a PostgreSQL 15 image from the
# same base (tests/docker/postgres/), then brings up docker/compose.yaml with
# the simulator profile and checks:
#   - every service becomes healthy; the migrations ran once;
#   - a job from examples/ reaches `succeeded` through the published port;
#   - `docker-compose stop` lets embedd finish within its grace period (exit
#     status 0, leases handed back, none left in the database);
#   - a restart keeps the data, and the job in flight at the stop finishes;
#   - the image runs as non-root with a read-only root filesystem, and its
#     health check follows EMBEDD_LISTEN.
# Prints image sizes and timings. Exit status: 0 passed, 1 failed, 77 skipped
# (no Docker daemon could start here), said loudly in a SKIPPED line.
# EMBEDD_DOCKER_TEST=skip skips on purpose; =require makes a missing daemon
# a failure. Images are tagged (debian:12-slim, embedd:local, embedd-build:local,
# embedd-test/postgres:15, all labelled embedd.image) and reused by the next run;
# remove them with: docker image rm $(docker image ls -q -f label=embedd.image)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

project=embedd-dockertest
base_image=debian:12-slim
pg_image=embedd-test/postgres:15
mode=${EMBEDD_DOCKER_TEST:-auto}
t_start=$SECONDS

say() { echo "==> [docker] $*"; }
skip() {
  echo "==> [docker] SKIPPED: $* (no Docker test ran)"
  exit 77
}
no_daemon() {
  if [ "$mode" = require ]; then
    echo "==> [docker] FAILED: $* (EMBEDD_DOCKER_TEST=require)" >&2
    exit 1
  fi
  skip "$* (EMBEDD_DOCKER_TEST=require makes this a failure)"
}

[ "$mode" = skip ] && skip "EMBEDD_DOCKER_TEST=skip"

work=$(mktemp -d /tmp/embedd-docker.XXXXXX)
started_dockerd=""
stack_up=""
docker=docker

stop_dockerd() {
  [ -n "$started_dockerd" ] || return 0
  say "stopping the dockerd this test started (pid $started_dockerd)"
  kill -TERM "$started_dockerd" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$started_dockerd" 2>/dev/null || break
    sleep 0.5
  done
  kill -KILL "$started_dockerd" 2>/dev/null || true
  wait "$started_dockerd" 2>/dev/null || true
  started_dockerd=""
}

cleanup() {
  local rc=$?
  set +e
  if [ -n "$stack_up" ]; then
    dc down -v --remove-orphans -t 30 >>"$work/compose.log" 2>&1
    "$docker" rm -f "$project-readonly" >/dev/null 2>&1
  fi
  stop_dockerd
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "==> [docker] FAILED: $*" >&2
  if [ -n "$stack_up" ]; then
    echo "---- docker-compose ps" >&2
    dc ps >&2 || true
    echo "---- last log lines of every service" >&2
    dc logs --no-color --tail 40 >&2 || true
  fi
  exit 1
}

# ---------------------------------------------------------------- tools
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v debootstrap >/dev/null || need+=(debootstrap)
for t in curl jq; do command -v $t >/dev/null || need+=($t); done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || no_daemon "missing ${need[*]} and not root to install them"
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } \
    >"$work/apt.log" 2>&1; then
    tail -n 5 "$work/apt.log"
    no_daemon "could not install ${need[*]} with apt-get"
  fi
fi
# the client that comes with Debian's daemon, rather than any other on PATH
[ -x /usr/bin/docker ] && docker=/usr/bin/docker
export DOCKER=$docker

# ---------------------------------------------------------------- daemon
if ! "$docker" info >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || no_daemon "no Docker daemon answers and only root can start one"
  say "no Docker daemon runs: starting dockerd (log: $work/dockerd.log)"
  dockerd >"$work/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 1 60); do
    "$docker" info >/dev/null 2>&1 && break
    kill -0 "$started_dockerd" 2>/dev/null || break
    sleep 0.5
  done
  if ! "$docker" info >/dev/null 2>&1; then
    why=$(grep -iE 'level=(fatal|error)|failed' "$work/dockerd.log" | tail -n 1 | cut -c1-300)
    stop_dockerd
    no_daemon "dockerd could not start here: ${why:-no reason in its log}"
  fi
fi
say "Docker $("$docker" version -f '{{.Server.Version}}'), $(docker-compose version --short 2>/dev/null || echo '?') (docker-compose)"

dc() {
  docker-compose -p "$project" -f "$root/docker/compose.yaml" --profile sim "$@"
}

timed() { # name command...: run, log to $work/<name>.log, print its time
  local name=$1 t0=$SECONDS
  shift
  if ! "$@" >"$work/$name.log" 2>&1; then
    tail -n 30 "$work/$name.log" >&2
    fail "$name: $*"
  fi
  say "$name: $((SECONDS - t0)) s"
  eval "t_$name=$((SECONDS - t0))"
}

size_mb() { echo "$(($("$docker" image inspect -f '{{.Size}}' "$1") / 1000000)) MB"; }

# ---------------------------------------------------------------- images
t_base=0
if "$docker" image inspect "$base_image" >/dev/null 2>&1; then
  say "$base_image is here (reused)"
else
  say "$base_image is missing: making it with debootstrap (tests/docker/debian-base.sh)"
  timed base bash tests/docker/debian-base.sh "$base_image"
fi
# The build stage gets a tag too, so that its cache is kept while stale
# stages and images of earlier runs (untagged, labelled) are pruned.
timed build_stage "$docker" build -f docker/Dockerfile --target build -t embedd-build:local .
timed embedd_image "$docker" build -f docker/Dockerfile -t embedd:local .
timed postgres_image "$docker" build -t "$pg_image" tests/docker/postgres
"$docker" image prune -f --filter label=embedd.image >/dev/null
say "image sizes: embedd:local $(size_mb embedd:local), $pg_image $(size_mb "$pg_image"), $base_image $(size_mb "$base_image")"

user=$("$docker" image inspect -f '{{.Config.User}}' embedd:local)
[ "$user" = 10001:10001 ] || fail "embedd:local runs as \"$user\", not 10001:10001"
[ "$("$docker" run --rm --entrypoint id embedd:local -u)" = 10001 ] || fail "embedd:local runs as root"
hc=$("$docker" image inspect -f '{{json .Config.Healthcheck.Test}}' embedd:local)
case "$hc" in
  '["CMD","embedd","healthcheck"'*) ;;
  *) fail "embedd:local's HEALTHCHECK is $hc, not embedd healthcheck" ;;
esac
say "embedd:local: user $user, HEALTHCHECK $hc"

# ---------------------------------------------------------------- the stack
free_port() {
  local p
  for p in $(shuf -i 20000-32000 -n 50); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
port=$(free_port) || fail "no free port"
export EMBEDD_HOST_PORT=$port EMBEDD_POSTGRES_IMAGE=$pg_image
export GEMINI_BASE_URL=http://gemini-sim:8089 GEMINI_API_KEY=sim-key
# batch mode even for the small example, polled briskly: a job is in flight
# for several seconds (the simulator's batches take 7 s), time for the stop
export EMBEDD_SYNC_MAX_TEXTS=0 EMBEDD_POLL_MIN_MS=500 EMBEDD_POLL_MAX_MS=1000
unset EMBEDD_WORKERS EMBEDD_LOG_LEVEL GEMINI_API_VERSION

t_stack0=$SECONDS
dc down -v --remove-orphans >/dev/null 2>&1 || true # leftovers of an interrupted run
stack_up=1
say "docker-compose -f docker/compose.yaml --profile sim up -d (project $project, port $port)"
dc up -d >"$work/compose.log" 2>&1 || {
  cat "$work/compose.log" >&2
  fail "docker-compose up"
}

cid() { dc ps -q "$1"; }

wait_healthy() { # service...
  local svc id st t0=$SECONDS
  for svc in "$@"; do
    while :; do
      id=$(cid "$svc")
      st=$("$docker" inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}no health check{{end}}' \
        "$id" 2>/dev/null || echo "not created")
      [ "$st" = healthy ] && break
      [ $((SECONDS - t0)) -lt 180 ] || fail "$svc is \"$st\" after 180 s"
      sleep 1
    done
  done
  say "healthy after $((SECONDS - t0)) s: $*"
}

wait_healthy postgres gemini-sim embedd
mig=$(cid migrate)
[ "$("$docker" inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$mig")" = "exited 0" ] ||
  fail "migrate did not exit 0"

psql_q() { dc exec -T postgres psql -U embedd -d embedd -Atc "$1"; }

n_mig=$(find migrations -name '*.sql' | wc -l)
check_migrations() {
  local logs applied rows
  logs=$( (
    "$docker" logs "$(cid migrate)"
    "$docker" logs "$(cid embedd)"
  ) 2>&1)
  applied=$(grep -oE 'applied [0-9]+ migration' <<<"$logs" | grep -vc 'applied 0 ' || true)
  grep -q "applied $n_mig migration" <<<"$logs" || fail "no run applied the $n_mig migrations"
  [ "$applied" = 1 ] || fail "migrations applied by $applied runs, want exactly 1"
  rows=$(psql_q 'SELECT count(*), count(DISTINCT version) FROM schema_migrations')
  [ "$rows" = "$n_mig|$n_mig" ] || fail "schema_migrations holds $rows rows, want $n_mig once each"
  say "migrations: $n_mig applied once ($(grep -c 'applied 0 migration' <<<"$logs") later run(s) applied none)"
}
check_migrations

key=$(dc exec -T embedd embedd keys create --name docker-test 2>/dev/null | tr -d '\r' | head -n1)
[[ "$key" =~ ^[A-Za-z0-9_]+$ ]] || fail "keys create in the embedd container printed \"$key\""
base="http://127.0.0.1:$port"
api() { curl -sS --max-time 20 -H "Authorization: Bearer $key" -H 'Content-Type: application/json' "$@"; }

# submit [TAG]: the sample set, each text suffixed with TAG when given (texts
# already embedded under the key are reused, not sent: a job meant to be in
# flight at Google needs texts of its own)
submit() {
  local out id body
  body=$(jq -c --arg t "${1:-}" 'if $t == "" then . else .documents |= map(.text += " " + $t) end' examples/documents.json)
  out=$(api -X POST "$base/v1/jobs" --data-binary "$body") || fail "POST /v1/jobs: curl failed"
  id=$(jq -r '.id // empty' <<<"$out")
  [ -n "$id" ] || fail "POST /v1/jobs refused: $out"
  echo "$id"
}

wait_state() { # id state timeout_s
  local st t0=$SECONDS
  while :; do
    st=$(api "$base/v1/jobs/$1" | jq -r .state) || st="?"
    [ "$st" = "$2" ] && return 0
    case "$st" in failed | cancelled) fail "job $1 ended $st" ;; esac
    [ $((SECONDS - t0)) -lt "$3" ] || fail "job $1 is $st after $3 s, want $2"
    sleep 1
  done
}

fingerprint() { # every result with its vector's first values: changes if anything is lost
  api "$base/v1/jobs/$1/results?limit=1000" |
    jq -c '[.results[] | [.document_id, .chunk_index, .state, (.embedding | length), .embedding[0:4]]]' |
    sha256sum | cut -c1-16
}

t0=$SECONDS
job_a=$(submit)
wait_state "$job_a" succeeded 180
chunks=$(api "$base/v1/jobs/$job_a" | jq -r .stats.chunks.total)
vectors=$(api "$base/v1/jobs/$job_a/results?limit=1000" |
  jq '[.results[] | select(.state == "succeeded" and (.embedding | length) == 768)] | length')
[ "$vectors" = "$chunks" ] && [ "$chunks" -gt 0 ] ||
  fail "job $job_a: $vectors vectors of 768 for $chunks chunks"
fp_a=$(fingerprint "$job_a")
say "job $job_a (examples/documents.json) succeeded through 127.0.0.1:$port in $((SECONDS - t0)) s: $chunks chunks, $vectors vectors"

# a second job, in flight at Google (the simulator) when the stack stops
job_b=$(submit "(second job)")
t0=$SECONDS
until [ "$(api "$base/v1/jobs/$job_b" | jq -r '.stats.batches.submitted // 0' || echo 0)" -ge 1 ]; do
  [ $((SECONDS - t0)) -lt 60 ] || fail "job $job_b submitted no batch within 60 s"
  sleep 0.5
done
say "job $job_b: batch submitted to Google (the simulator); stopping the stack"

emb=$(cid embedd)
t0=$SECONDS
dc stop >>"$work/compose.log" 2>&1 || fail "docker-compose stop"
stop_s=$((SECONDS - t0))
exit_code=$("$docker" inspect -f '{{.State.ExitCode}}' "$emb")
stopped=$("$docker" logs "$emb" 2>&1 | grep -oE 'stopped in [0-9]+ ms \([0-9]+ lease\(s\) handed back\)' | tail -n 1)
[ "$exit_code" = 0 ] || fail "embedd exited $exit_code on docker-compose stop"
[ -n "$stopped" ] || fail "embedd did not report an orderly stop"
shutdown_log=$("$docker" logs "$emb" 2>&1 | sed -n '/signal 15: shutting down/,/stopped in/p')
! grep -q 'shutdown did not finish' <<<"$shutdown_log" || fail "embedd hit its shutdown deadline"
# the database outlives embedd (compose stop order), so the hand-back is written
! grep -qE 'could not hand back|leases not handed back' <<<"$shutdown_log" ||
  fail "embedd could not hand its leases back: $shutdown_log"
say "docker-compose stop: $stop_s s (grace 40 s); embedd exit 0, $stopped; its shutdown:"
sed -E 's/^[0-9T:.-]+Z /      /' <<<"$shutdown_log"

# the data survives; no lease is left behind
dc start postgres >>"$work/compose.log" 2>&1 || fail "docker-compose start postgres"
wait_healthy postgres
leased=$(psql_q 'SELECT count(*) FROM batches WHERE lease_owner IS NOT NULL')
[ "$leased" = 0 ] || fail "$leased batch lease(s) left held after the stop"
say "no lease held after the stop"
dc up -d >>"$work/compose.log" 2>&1 || fail "docker-compose up (restart)"
wait_healthy postgres gemini-sim embedd
check_migrations
[ "$(api "$base/v1/jobs/$job_a" | jq -r .state)" = succeeded ] || fail "job $job_a lost its state"
[ "$(fingerprint "$job_a")" = "$fp_a" ] || fail "job $job_a's results changed across the restart"
wait_state "$job_b" succeeded 240
say "restart kept the data: job $job_a unchanged, job $job_b (in flight at the stop) succeeded"

# read-only root filesystem, non-root, health check on another EMBEDD_LISTEN
net=$("$docker" inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$(cid embedd)")
"$docker" rm -f "$project-readonly" >/dev/null 2>&1 || true
"$docker" run -d --name "$project-readonly" --read-only --tmpfs /tmp --network "$net" \
  -e DATABASE_URL=postgresql://embedd:embedd@postgres:5432/embedd \
  -e EMBEDD_LISTEN=0.0.0.0:9090 --health-interval 2s embedd:local serve >/dev/null ||
  fail "docker run --read-only embedd:local"
t0=$SECONDS
until [ "$("$docker" inspect -f '{{.State.Health.Status}}' "$project-readonly")" = healthy ]; do
  [ "$("$docker" inspect -f '{{.State.Running}}' "$project-readonly")" = true ] || {
    "$docker" logs --tail 20 "$project-readonly" >&2
    fail "the read-only container stopped"
  }
  [ $((SECONDS - t0)) -lt 60 ] || {
    "$docker" inspect -f '{{json .State.Health}}' "$project-readonly" >&2
    fail "the read-only container on EMBEDD_LISTEN=0.0.0.0:9090 is not healthy after 60 s"
  }
  sleep 1
done
"$docker" stop -t 40 "$project-readonly" >/dev/null
ro_exit=$("$docker" inspect -f '{{.State.ExitCode}}' "$project-readonly")
"$docker" rm "$project-readonly" >/dev/null
[ "$ro_exit" = 0 ] || fail "the read-only container exited $ro_exit"
say "docker run --read-only, EMBEDD_LISTEN=0.0.0.0:9090: healthy in $((SECONDS - t0)) s, stopped with exit 0"

dc down -v --remove-orphans -t 30 >>"$work/compose.log" 2>&1 || fail "docker-compose down"
stack_up=""
left=$("$docker" ps -aq --filter "label=com.docker.compose.project=$project")
[ -z "$left" ] || fail "containers left after docker-compose down: $left"
t_stack=$((SECONDS - t_stack0))
stop_dockerd

say "timings: base image ${t_base} s, build stage ${t_build_stage} s, embedd image ${t_embedd_image} s, postgres image ${t_postgres_image} s, stack checks ${t_stack} s; total $((SECONDS - t_start)) s"
say "passed"
