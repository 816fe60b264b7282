#!/usr/bin/env bash
# Start gunicorn and a Celery worker (with beat for the stuck-job sweeper); stop both on Ctrl-C.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
mkdir -p var
"$VENV/bin/python" -m celery -A emmmsite worker -B -l INFO --concurrency=1 -s var/celerybeat-schedule &
WORKER=$!
"$VENV/bin/python" -m gunicorn -c gunicorn.conf.py emmmsite.wsgi &
WEB=$!
stop() { kill -TERM "$WEB" "$WORKER" 2>/dev/null; wait "$WEB" "$WORKER" 2>/dev/null; exit 0; }
trap stop INT TERM
echo "emmmbedding: http://${HOST:-127.0.0.1}:${PORT:-8000}/  (Ctrl-C stops the server and the worker)"
wait -n "$WEB" "$WORKER"
echo "a process exited; stopping the other"
stop
