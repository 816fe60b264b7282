#!/usr/bin/env bash
# `make run` / `make run-prod`: migrations and static files, then gunicorn, one Celery worker and one Celery beat under
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
# (this shell execs it) for as long as it runs, on descriptor 3, which supervisord keeps open
# when it reloads (it closes 5 and up); a crashed one's lock goes with it.
command -v flock > /dev/null || { echo "emmmbedding: scripts/run.sh needs flock (util-linux)" >&2; exit 1; }
exec 3>"$EMMM_VAR_DIR/run.lock"
if ! flock -n 3; then
  echo "emmmbedding is already running on $EMMM_VAR_DIR (stop it first, or set EMMM_VAR_DIR to another folder)" >&2
  exit 1
fi
HOST=${HOST:-127.0.0.1} PORT=${PORT:-8000}
ADDRESS=${GUNICORN_BIND:-$HOST:$PORT}
if [ -z "${GUNICORN_BIND:-}" ]; then
  # The address gunicorn will bind, free? (A port another program holds left the web server
  # retried for ever; any other reason to fail is said as it is.)
  "$EMMM_PY" - "$HOST" "$PORT" <<'PY' || exit 1
import errno, socket, sys
host, port = sys.argv[1].strip("[]"), sys.argv[2]
try:
    family, kind, proto, _, address = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
except (OSError, ValueError) as exc:
    busy = isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE
    reason = "is in use by another program (set PORT to another port)" if busy else f"cannot be used: {exc}"
    sys.exit(f"emmmbedding: {sys.argv[1]}:{port} {reason}")
PY
fi
# The database and the static files, once this instance holds the lock (a second `make run`
# is refused before it touches the running one's database).
"$EMMM_PY" manage.py migrate --noinput
"$EMMM_PY" manage.py collectstatic --noinput -v 0
# Under systemd, stdout is the journal's socket, which supervisord cannot open by path
# (/dev/stdout: ENXIO, and no program would ever start): the programs' output then goes to a
# file beside supervisord's own log.
if [ -S /dev/stdout ]; then
  export EMMM_PROGRAM_LOG=$EMMM_VAR_DIR/programs.log EMMM_PROGRAM_LOG_BYTES=10MB
  echo "emmmbedding: stdout is a socket; the programs log to $EMMM_PROGRAM_LOG"
else
  export EMMM_PROGRAM_LOG=/dev/stdout EMMM_PROGRAM_LOG_BYTES=0
fi
echo "emmmbedding: http://$ADDRESS/  (web, worker, beat under supervisord; Ctrl-C stops all)"
exec "$EMMM_PY" -m supervisor.supervisord -c scripts/supervisord.conf
