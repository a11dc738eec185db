#!/usr/bin/env bash
# A PostgreSQL server for the tests (CI). Installs postgresql when missing (apt, needs root),
# starts a throwaway cluster on 127.0.0.1:${TRADEFORGE_PG_PORT:-55432} (data in
# ${TRADEFORGE_PG_DIR:-/var/tmp/tradeforge-pg}), creates the role `tradeforge` (password login,
# CREATEDB: every test creates its own database) and the database `tradeforge_test`, and prints
# ONE line on stdout, for `eval "$(.ci/postgres.sh)"`:
#
#   export TRADEFORGE_TEST_POSTGRES_URL=postgresql://tradeforge:...@127.0.0.1:55432/tradeforge_test
#
# Everything else goes to stderr. Running it again reuses the running server. The cluster runs
# with fsync=off (CI data is thrown away). Stop it with:
#   runuser -u postgres -- "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pg_ctl" \
#     -D /var/tmp/tradeforge-pg/data stop
set -euo pipefail

PORT="${TRADEFORGE_PG_PORT:-55432}"
DIR="${TRADEFORGE_PG_DIR:-/var/tmp/tradeforge-pg}"
ROLE=tradeforge
DB=tradeforge_test
PASSWORD="${TRADEFORGE_PG_PASSWORD:-tradeforge-ci}"

log() { echo "postgres.sh: $*" >&2; }

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

BIN="$(find_bin || true)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  if [ "$(id -u)" != 0 ]; then
    log "postgresql is not installed and this is not root: cannot apt-get install it"
    exit 1
  fi
  log "installing postgresql (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BIN="$(find_bin)"
fi

# PostgreSQL refuses to run as root: run its tools as the `postgres` system user then.
if [ "$(id -u)" = 0 ]; then
  as_pg() { (cd / && runuser -u postgres -- "$@"); }
else
  as_pg() { "$@"; }
fi

mkdir -p "$DIR"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$DIR"; fi
chmod 700 "$DIR"

if ! as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
  if [ ! -f "$DIR/data/PG_VERSION" ]; then
    log "initdb in $DIR/data"
    as_pg "$BIN/initdb" -D "$DIR/data" -U postgres -E UTF8 --locale=C --no-sync \
      --auth-local=trust --auth-host=scram-sha-256 >&2
  fi
  log "starting the server on 127.0.0.1:$PORT"
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
    -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DIR -c fsync=off -c full_page_writes=off -c max_connections=100" \
    start >&2
fi

psql_admin() { as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]; then
  log "creating role $ROLE"
  psql_admin -c "CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'" >&2
else
  psql_admin -c "ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'" >&2
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
  log "creating database $DB"
  psql_admin -c "CREATE DATABASE $DB OWNER $ROLE" >&2
fi

URL="postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
# the URL must work over TCP with the password, as the tests will use it
PGPASSWORD="$PASSWORD" "$BIN/psql" "$URL" -v ON_ERROR_STOP=1 -qtA -c "SELECT 1" >/dev/null
log "ready: $ROLE@127.0.0.1:$PORT/$DB"
echo "export TRADEFORGE_TEST_POSTGRES_URL=$URL"
