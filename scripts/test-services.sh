#!/usr/bin/env bash
# Make PostgreSQL, redis-server and Chromium available for `make test` (Debian).
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
need=()
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" </dev/null
fi
# PostgreSQL: start the first cluster, create role/database emmm (password emmm).
read -r ver name _ < <(pg_lsclusters -h | head -1)
if ! pg_lsclusters -h | head -1 | grep -q online; then
  $SUDO pg_ctlcluster "$ver" "$name" start
fi
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
pg_isready -h 127.0.0.1
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -c "$1"; else sudo -u postgres bash -c "$1"; fi; }
as_pg "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='emmm'\" | grep -q 1 || psql -qc \"CREATE ROLE emmm LOGIN PASSWORD 'emmm' CREATEDB\""
as_pg "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='emmm'\" | grep -q 1 || createdb -O emmm emmm"
# Redis: the tests start (and stop) private redis-server processes; no daemon is left running.
echo "services ready: PostgreSQL $ver, $(redis-server --version | cut -d' ' -f3), $(chromium --version 2>/dev/null || echo chromium?)"
