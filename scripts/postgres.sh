#!/usr/bin/env bash
# A throwaway PostgreSQL 15 + pgvector for development and tests, on 127.0.0.1 at a free port.
#   scripts/postgres.sh start   installs what is missing, starts the cluster (idempotent), prints its URL
#   scripts/postgres.sh url     prints the URL of the running cluster
#   scripts/postgres.sh stop    stops it (the data stays in $PG_TEST_DIR until the next start)
#   scripts/postgres.sh pair start|stop-primary|start-primary|stop
#                               a primary and its streaming standby (pg_basebackup -R) of their own, for the read-replica
#                               tests and benchmark: prints the primary's URL, then the standby's
# Installs bookworm's postgresql-15 and postgresql-server-dev-15, and builds pgvector from Debian's *source*
# package (a deb-src line for trixie, source only: no binary package is taken from trixie).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/prerequisites.sh
source scripts/prerequisites.sh

PG_BIN=/usr/lib/postgresql/15/bin
PG_TEST_DIR=${PG_TEST_DIR:-/tmp/embedding-service-postgres}
DATA=$PG_TEST_DIR/data
URL_FILE=$PG_TEST_DIR/url

# From /: the postgres user may not enter the folder the script was started in.
as_postgres() { if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

install_pgvector() {
  [ -f /usr/share/postgresql/15/extension/vector.control ] && return 0
  # The same mirror the machine already uses for bookworm, as a source-only entry for trixie.
  local uri
  uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 ~ /^bookworm/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$uri" ] || { echo "no Debian mirror found in the apt sources to fetch pgvector's source package from" >&2; exit 1; }
  local list=/etc/apt/sources.list.d/pgvector-trixie-src.sources
  if [ ! -f "$list" ]; then
    printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
      | $(need_root) tee "$list" >/dev/null
    $(need_root) apt-get update -qq
  fi
  local build
  build=$(mktemp -d)
  (
    cd "$build"
    apt-get source -qq --download-only -o APT::Sandbox::User=root pgvector >/dev/null
    dpkg-source -x --no-check ./pgvector_*.dsc src >/dev/null
    cd src
    make -s PG_CONFIG=$PG_BIN/pg_config >/dev/null
    $(need_root) make -s PG_CONFIG=$PG_BIN/pg_config install >/dev/null
  )
  rm -rf "$build"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

running() { [ -f "$DATA/postmaster.pid" ] && as_postgres $PG_BIN/pg_ctl -D "$DATA" status >/dev/null 2>&1; }

start() {
  apt_install postgresql-15 postgresql-server-dev-15 dpkg-dev make gcc python3
  install_pgvector
  # PG_SHARED_BUFFERS (default 1GB; the benchmarks of a million vectors ask for more): a running cluster with another
  # value is restarted with this one.
  local buffers=${PG_SHARED_BUFFERS:-1GB}
  if running; then
    local url
    url=$(cat "$URL_FILE")
    if [ "$(as_postgres psql -Atq "$url" -c 'SHOW shared_buffers' 2>/dev/null)" = "$buffers" ]; then echo "$url"; return 0; fi
    as_postgres $PG_BIN/pg_ctl -D "$DATA" -m fast -w stop >/dev/null
  fi
  $(need_root) mkdir -p "$PG_TEST_DIR"
  $(need_root) chown postgres: "$PG_TEST_DIR" 2>/dev/null || true
  if [ ! -f "$DATA/PG_VERSION" ]; then
    as_postgres $PG_BIN/initdb -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  local port
  port=$(free_port)
  as_postgres $PG_BIN/pg_ctl -D "$DATA" -l "$PG_TEST_DIR/log" -w -o "-p $port -k $PG_TEST_DIR -c listen_addresses=127.0.0.1 -c shared_buffers=$buffers" start >/dev/null
  local url="postgresql://postgres@127.0.0.1:$port/postgres"
  PGOPTIONS='-c client_min_messages=warning' as_postgres psql -q -h 127.0.0.1 -p "$port" -U postgres -c "CREATE EXTENSION IF NOT EXISTS vector" postgres >/dev/null
  echo "$url" | as_postgres tee "$URL_FILE" >/dev/null
  echo "$url"
}

PAIR=$PG_TEST_DIR/pair

pair_running() { [ -f "$PAIR/$1/postmaster.pid" ] && as_postgres $PG_BIN/pg_ctl -D "$PAIR/$1" status >/dev/null 2>&1; }

pair_start_one() {
  local buffers=${PG_SHARED_BUFFERS:-1GB}
  if pair_running "$1"; then
    # Running with the memory asked for: keep it; else restart it with that (a benchmark of a million vectors asks for more).
    [ "$(as_postgres psql -Atq -h 127.0.0.1 -p "$(cat "$PAIR/$1.port")" -U postgres -c 'SHOW shared_buffers' postgres 2>/dev/null)" = "$buffers" ] && return 0
    as_postgres $PG_BIN/pg_ctl -D "$PAIR/$1" -m fast -w stop >/dev/null
  fi
  as_postgres $PG_BIN/pg_ctl -D "$PAIR/$1" -l "$PAIR/$1.log" -w -o "-p $(cat "$PAIR/$1.port") -k $PAIR -c listen_addresses=127.0.0.1 -c shared_buffers=$buffers" start >/dev/null
}

pair() {
  case "${1:-}" in
    start)
      apt_install postgresql-15 postgresql-server-dev-15 dpkg-dev make gcc python3
      install_pgvector
      $(need_root) mkdir -p "$PAIR"
      $(need_root) chown postgres: "$PAIR" 2>/dev/null || true
      if [ ! -f "$PAIR/primary/PG_VERSION" ]; then
        free_port | as_postgres tee "$PAIR/primary.port" >/dev/null
        free_port | as_postgres tee "$PAIR/standby.port" >/dev/null
        as_postgres $PG_BIN/initdb -D "$PAIR/primary" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
        pair_start_one primary
        PGOPTIONS='-c client_min_messages=warning' as_postgres psql -q -h 127.0.0.1 -p "$(cat "$PAIR/primary.port")" -U postgres \
          -c "CREATE EXTENSION IF NOT EXISTS vector" postgres >/dev/null
        # A streaming standby: -R writes primary_conninfo and standby.signal.
        as_postgres $PG_BIN/pg_basebackup -h 127.0.0.1 -p "$(cat "$PAIR/primary.port")" -U postgres -D "$PAIR/standby" -R -X stream >/dev/null
      fi
      pair_start_one primary
      pair_start_one standby
      echo "postgresql://postgres@127.0.0.1:$(cat "$PAIR/primary.port")/postgres"
      echo "postgresql://postgres@127.0.0.1:$(cat "$PAIR/standby.port")/postgres"
      ;;
    stop-primary) if pair_running primary; then as_postgres $PG_BIN/pg_ctl -D "$PAIR/primary" -m fast -w stop >/dev/null; fi ;;
    start-primary) pair_start_one primary ;;
    stop) for one in standby primary; do if pair_running $one; then as_postgres $PG_BIN/pg_ctl -D "$PAIR/$one" -m fast -w stop >/dev/null; fi; done ;;
    *) echo "usage: scripts/postgres.sh pair start|stop-primary|start-primary|stop" >&2; exit 2 ;;
  esac
}

case "${1:-}" in
  start) start ;;
  pair) shift; pair "$@" ;;
  url) running && cat "$URL_FILE" || { echo "not running; scripts/postgres.sh start" >&2; exit 1; } ;;
  stop) if running; then as_postgres $PG_BIN/pg_ctl -D "$DATA" -m fast -w stop >/dev/null; fi ;;
  *) echo "usage: scripts/postgres.sh start|url|stop|pair ..." >&2; exit 2 ;;
esac
