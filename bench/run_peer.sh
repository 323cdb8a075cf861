#!/usr/bin/env bash
# The django-helpdesk peer anchor (/work/shared/peers/django_helpdesk), run on the same machine as our
# benchmarks, its read phases capped so the whole set stays short. Writes bench/results/peer-<db>.json.
#   bash bench/run_peer.sh sqlite
#   bash bench/run_peer.sh postgres
# Caps: default write phases (2,000 tickets, 2,000 follow-ups, concurrency 8), 100,000 tickets for reads,
# each read phase 200 requests or --read-seconds (default here 40 s; the peer's own default is 120 s).
set -euo pipefail
DBKIND=${1:-sqlite}
READ_SECONDS=${READ_SECONDS:-40}
PEER=/work/shared/peers/django_helpdesk
OUT=$(cd "$(dirname "$0")" && pwd)/results
mkdir -p "$OUT"
if [ "$DBKIND" = postgres ]; then export DB=postgres; else export DB=sqlite; fi
bash "$PEER/setup.sh" >&2
cd "$PEER"
/tmp/peer-dh/venv/bin/python bench.py --read-seconds "$READ_SECONDS" > "$OUT/peer-$DBKIND.json"
echo "wrote $OUT/peer-$DBKIND.json" >&2
