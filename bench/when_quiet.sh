#!/usr/bin/env bash
# Run a benchmark only while no test suite (pytest) runs on this shared 2-core machine, and run it again
# (up to 3 attempts) when a test run starts meanwhile, so no figure is taken under foreign load.
#   bash bench/when_quiet.sh OUTFILE command args...     (the command's stdout goes to OUTFILE, per attempt)
# Exit status: the command's; 3 if every attempt overlapped a test run (the last output is kept).
set -u
out=$1; shift
busy() { pgrep -f "[p]ytest" > /dev/null; }
for attempt in 1 2 3; do
  quiet=0
  while [ "$quiet" -lt 10 ]; do  # 20 s without a test run before starting
    if busy; then quiet=0; else quiet=$((quiet + 1)); fi
    sleep 2
  done
  flag=$(mktemp)
  ( while sleep 2; do busy && echo noisy > "$flag"; done ) &
  watcher=$!
  "$@" > "$out"
  rc=$?
  kill "$watcher" 2>/dev/null
  wait "$watcher" 2>/dev/null
  if [ ! -s "$flag" ]; then rm -f "$flag"; exit "$rc"; fi
  rm -f "$flag"
  echo "[when_quiet] a test run overlapped attempt $attempt of: $*" >&2
done
exit 3
