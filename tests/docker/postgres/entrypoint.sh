#!/bin/sh
# The test PostgreSQL image's entrypoint: on an empty data folder, initdb with
# POSTGRES_USER as the superuser (password POSTGRES_PASSWORD, required) and
# create POSTGRES_DB; local socket connections are trusted, TCP ones need the
# password. Then the command runs in the foreground (postgres by default).
set -eu

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "embedd-test-postgres: POSTGRES_PASSWORD must be set" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    # single-user mode: no server, no socket, nothing can connect meanwhile
    printf 'CREATE DATABASE "%s" OWNER "%s"\n' "$db" "$user" |
      postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  echo "embedd-test-postgres: initialised $PGDATA (user $user, database $db)" >&2
fi
exec "$@"
