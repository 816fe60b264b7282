#!/usr/bin/env bash
# Run one pytest node N times with a CPU hog beside it; print the pass count.
#   scripts/stress-tests.sh N TEST_NODE [more pytest args]
# Needs DATABASE_URL (PostgreSQL). The hog is a busy Python loop in its own process group;
# on exit, Ctrl-C or SIGTERM the hog is killed and the running pytest gets SIGINT (so its
# fixtures stop the processes they started) and is waited for. Logs of failed runs stay in
# var/stress/. A background job of a non-interactive shell starts with SIGINT *ignored*, and
# Python keeps an inherited SIG_IGN, so pytest is started through a shim that restores
# KeyboardInterrupt; without it the SIGINT did nothing and the script had to kill pytest,
# orphaning the worker and redis-server its fixtures had started.
set -uo pipefail
cd "$(dirname "$0")/.."
n=$1; shift
py=${VENV:-.venv}/bin/python
mkdir -p var/stress
setsid "$py" -c 'while True: pass' &
hog=$!
test_pid=""
pytest_with_sigint='import signal, sys, pytest
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.exit(pytest.main(sys.argv[1:]))'
cleanup() {
  kill -KILL -- "-$hog" 2>/dev/null; wait "$hog" 2>/dev/null
  if [ -n "$test_pid" ] && kill -0 "$test_pid" 2>/dev/null; then kill -INT "$test_pid"; wait "$test_pid"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
pass=0
for i in $(seq 1 "$n"); do
  log=var/stress/run-$i.log
  start=$(date +%s)
  "$py" -c "$pytest_with_sigint" -q -p no:cacheprovider -s "$@" >"$log" 2>&1 &
  test_pid=$!
  wait "$test_pid"; rc=$?
  test_pid=""
  if [ "$rc" = 0 ]; then
    pass=$((pass + 1)); echo "run $i: pass ($(( $(date +%s) - start ))s) $(grep -h 'resumed after' "$log")"
  else
    echo "run $i: FAIL rc=$rc ($(( $(date +%s) - start ))s)"; cp "$log" "var/stress/fail-$(date +%s)-$i.log"
  fi
done
echo "passed $pass/$n: $*"
