#!/usr/bin/env bash
# A private PostgreSQL 15 cluster in a local folder, for tests, benchmarks and
# the demo; no system service is needed.
#
#   scripts/pg.sh start DIR [PORT]   initdb (once) and start; prints the DATABASE_URL
#   scripts/pg.sh stop DIR           stop it (fast shutdown)
#   scripts/pg.sh url DIR            print the DATABASE_URL of a running cluster
#
# The cluster listens on 127.0.0.1:PORT (default: a free port) and on a unix
# socket in DIR; it trusts local connections and has a database "embedd".
# When run as root the server runs as the "postgres" user, as initdb requires.
set -euo pipefail

cmd=${1:?usage: pg.sh start|stop|url DIR [PORT]}
dir=${2:?usage: pg.sh start|stop|url DIR [PORT]}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/pg_ctl" ] || { echo "pg.sh: PostgreSQL server binaries not found" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  local p
  for p in $(shuf -i 20000-32000 -n 50); do  # below the ephemeral port range
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "pg.sh: no free port found" >&2
  return 1
}

url() {
  echo "postgresql://postgres@127.0.0.1:$(cat "$dir/port")/embedd"
}

case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  started=""
  fixed=${3:-}
  # a restart keeps the cluster's port, so URLs handed out stay valid
  [ -z "$fixed" ] && [ -s "$dir/port" ] && [ -f "$dir/data/PG_VERSION" ] && fixed=$(cat "$dir/port")
  for _ in 1 2 3 4 5; do # a free port can be taken before the server binds it
    port=${fixed:-$(free_port)}
    echo "$port" >"$dir/port"
    if as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null; then
      started=1
      break
    fi
    [ -n "$fixed" ] && break
  done
  [ -n "$started" ] || { cat "$dir/server.log" >&2; exit 1; }
  as_pg "$bindir/psql" -h "$dir" -p "$port" -U postgres -d postgres -qAt \
    -c "SELECT 1 FROM pg_database WHERE datname = 'embedd'" | grep -q 1 ||
    as_pg "$bindir/createdb" -h "$dir" -p "$port" -U postgres embedd
  url
  ;;
stop)
  [ -f "$dir/data/postmaster.pid" ] && as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  true
  ;;
url)
  url
  ;;
*)
  echo "pg.sh: unknown command $cmd" >&2
  exit 2
  ;;
esac
