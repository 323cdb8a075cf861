#!/usr/bin/env bash
# Every figure in BENCHMARKS.md, one after the other (never two at once: 2 cores), ~35 minutes.
#   bash bench/run_all.sh            results in bench/results/*.json, progress in bench/results/*.log
#   SKIP_PEER=1 bash bench/run_all.sh   the same without the ~7 min django-helpdesk runs
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
R=bench/results
mkdir -p $R
REDIS=redis://127.0.0.1:6379/0
step() { echo "[$(date +%H:%M:%S)] $*" >&2; }

for db in sqlite postgres; do
  step "ingest $db";  $PY bench/ingest.py --db $db > $R/ingest-$db.json 2> $R/ingest-$db.log
done
if [ -z "${SKIP_PEER:-}" ]; then  # SKIP_PEER=1: keep bench/results/peer-*.json from an earlier run
  for db in sqlite postgres; do
    step "peer $db";    bash bench/run_peer.sh $db 2> $R/peer-$db.log
  done
fi
step "inbox sqlite";  $PY bench/inbox.py --db sqlite --keep --explain $R/plans-sqlite.txt \
                        > $R/inbox-sqlite.json 2> $R/inbox-sqlite.log
kept=$(grep -o '/tmp/otklik-bench-sqlite-[A-Za-z0-9_]*' $R/inbox-sqlite.log | head -1)
step "sqlite plans on $kept"; $PY bench/sqlite_plans.py "$kept/otklik.db" > $R/sqlite-plans.json && rm -rf "$kept"
step "inbox postgres"; $PY bench/inbox.py --db postgres --explain $R/plans-postgres.txt \
                        > $R/inbox-postgres.json 2> $R/inbox-postgres.log
step "ws sqlite in-process"; $PY bench/ws_fanout.py --db sqlite > $R/ws-sqlite-inprocess.json 2> $R/ws-sqlite-inprocess.log
step "ws sqlite redis";      $PY bench/ws_fanout.py --db sqlite --redis $REDIS > $R/ws-sqlite-redis.json 2> $R/ws-sqlite-redis.log
step "ws postgres redis";    $PY bench/ws_fanout.py --db postgres --redis $REDIS > $R/ws-postgres-redis.json 2> $R/ws-postgres-redis.log
for db in sqlite postgres; do
  step "queries $db"; $PY bench/queries.py --db $db > $R/queries-$db.json 2> $R/queries-$db.log
done
step "done"
