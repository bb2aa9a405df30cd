#!/usr/bin/env bash
# Installs (Debian) and starts PostgreSQL on loopback for the integration tests, creates a test role
# and database, and prints the URL to export as INSTRUCT_GLOBAL_TEST_POSTGRES_URL.
set -euo pipefail
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
fi
read -r version cluster _ < <(pg_lsclusters --no-header | head -1)
pg_ctlcluster "$version" "$cluster" start >&2 || true
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
as_postgres() { su postgres -c "$1" >&2; }
as_postgres "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname='instruct_global'\" | grep -q 1 || psql -q -c \"CREATE ROLE instruct_global LOGIN PASSWORD 'instruct_global'\""
for db in instruct_global_test dagster_test; do
  as_postgres "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='$db'\" | grep -q 1 || createdb -O instruct_global $db"
done
echo "postgresql://instruct_global:instruct_global@127.0.0.1:5432/instruct_global_test"
