#!/usr/bin/env bash
# HubSpot backlog benchmark: BACKLOG (default 500) bookings for one tenant, posted at once,
# drained by the real server into the stateful mock HubSpot at HubSpot's documented limits
# (100 calls per rolling 10 s, search 5/s), with the connector's defaults (100/10 s,
# search 4/s). Prints the calls/s HubSpot saw and the number of 429s (must be 0).
#
#   BACKLOG=500 scripts/bench-hubspot-backlog.sh        # about 3.5 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
export BACKLOG="${BACKLOG:-500}"
cargo test --release --test e2e -- --ignored --nocapture --exact hubspot::hubspot_backlog_benchmark 2>&1 | grep -E "BENCHMARK|test result|panicked|FAILED|error"
