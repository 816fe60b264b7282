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
# One instance per var folder: a second would start a second scheduler on the same database
# and broker, and remove the first one's pid file when it stops. The lock is supervisord's
# (this shell execs it) for as long as it runs; a crashed one's lock goes with it.
exec 9>"$EMMM_VAR_DIR/run.lock"
if ! flock -n 9; then
  echo "emmmbedding is already running on $EMMM_VAR_DIR (stop it first, or set EMMM_VAR_DIR to another folder)" >&2
  exit 1
fi
HOST=${HOST:-127.0.0.1} PORT=${PORT:-8000}
if [ -z "${GUNICORN_BIND:-}" ] && ! "$EMMM_PY" -c "import socket, sys; s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], int(sys.argv[2])))" "$HOST" "$PORT" 2>/dev/null; then
  echo "emmmbedding: $HOST:$PORT is in use by another program (set PORT to another port)" >&2
  exit 1
fi
# Under systemd, stdout is the journal's socket, which supervisord cannot open by path
# (/dev/stdout: ENXIO, and no program would ever start): the programs' output then goes to a
# file beside supervisord's own log.
if [ -S /dev/stdout ]; then
  export EMMM_PROGRAM_LOG=$EMMM_VAR_DIR/programs.log
  echo "emmmbedding: stdout is a socket; the programs log to $EMMM_PROGRAM_LOG"
else
  export EMMM_PROGRAM_LOG=/dev/stdout
fi
echo "emmmbedding: http://$HOST:$PORT/  (web, worker, beat under supervisord; Ctrl-C stops all)"
exec "$EMMM_PY" -m supervisor.supervisord -c scripts/supervisord.conf
