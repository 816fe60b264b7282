#!/usr/bin/env bash
# `make run` / `make run-prod`: gunicorn, one Celery worker and one Celery beat under
# supervisord (scripts/supervisord.conf), in the foreground. A program that dies is
# restarted; Ctrl-C or SIGTERM stops everything (supervisord is exec'd, so the signal
# reaches it directly, and it stops each program's whole process group).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export EMMM_REPO=$PWD
export EMMM_PY=$PWD/$VENV/bin/python
[ -x "$EMMM_PY" ] || EMMM_PY=$VENV/bin/python  # VENV given as an absolute path
export EMMM_VAR_DIR=${EMMM_VAR_DIR:-$PWD/var}
mkdir -p "$EMMM_VAR_DIR"
echo "emmmbedding: http://${HOST:-127.0.0.1}:${PORT:-8000}/  (web, worker, beat under supervisord; Ctrl-C stops all)"
exec "$EMMM_PY" -m supervisor.supervisord -c scripts/supervisord.conf
