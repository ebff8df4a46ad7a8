#!/usr/bin/env bash
# Delivery benchmark: how fast `slatis-sync serve` drains a backlog of N jobs (two HTTP PUT
# steps each) to an instant local CRM stand-in (`sink`), against a plain loop that sends
# the same N x 2 requests with the same client settings and concurrency (`requestloop`).
#
#   scripts/bench-delivery.sh [--count N]        (N jobs, default 100000)
#
# The backlog is built with the product itself: serve runs with the sink answering 400, so
# every job dead-letters at once (permanent error); N events are ingested with loadgen;
# serve stops; `slatis-sync dlq replay --all` puts every job back to pending; the sink is
# restarted answering 200, serve started again, and the time from its start until no job
# is pending or running is the drain time (start-up included; sqlite3 polls every 0.1 s).
# Both sides run 32 requests in flight (delivery.concurrency, and the connector's own
# concurrency raised to it). Everything on 127.0.0.1; SQLite store.
set -euo pipefail
cd "$(dirname "$0")/.."
count=100000
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

bench_scratch
bench_build loadgen sink requestloop

secret=whsec_bench
db="$work/delivery.db"
q() { sqlite3 "$db" "$1"; }
port=$(free_port) admin=$(free_port) sink_port=$(free_port)
config="$work/delivery.yaml"
{ config_head "$port" "$admin" "sqlite://$db"; tenant_yaml bench "$secret" "http://127.0.0.1:$sink_port" BOOKING_CREATED; } >"$config"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $count jobs x 2 requests, 32 in flight"
echo "   building the backlog (sink answers 400: every job dead-letters at once)"
bg_start "$work/sink400.log" target/release/sink --listen "127.0.0.1:$sink_port" --status 400
sink_pid=$bg_pid
wait_http "http://127.0.0.1:$sink_port/"
serve "$config" "$port" "$work/serve1.log"
server_pid=$bg_pid
target/release/loadgen --url "http://127.0.0.1:$port/webhooks/bench" --secret "$secret" --count "$count" --concurrency 64 | sed 's/^/   ingest: /'
poll_zero 600 q "select count(*) from jobs where status in ('pending', 'running')" >/dev/null
bg_stop "$server_pid"
bg_stop "$sink_pid"
dead=$(q "select count(*) from jobs where status = 'dead'")
[ "$dead" = "$count" ] || { echo "expected $count dead jobs, found $dead" >&2; exit 1; }
target/release/slatis-sync dlq replay --all --config "$config" >"$work/replay.log" 2>&1
echo "   replayed: $(q "select count(*) from jobs where status = 'pending'") jobs pending"

# Fresh ports for the second half (the machine is shared: the first ones may be taken now).
port=$(free_port) admin=$(free_port) sink_port=$(free_port)
{ config_head "$port" "$admin" "sqlite://$db"; tenant_yaml bench "$secret" "http://127.0.0.1:$sink_port" BOOKING_CREATED; } >"$config"
bg_start "$work/sink200.log" target/release/sink --listen "127.0.0.1:$sink_port"
sink_pid=$bg_pid
wait_http "http://127.0.0.1:$sink_port/"
start=$(date +%s.%N)
bg_start "$work/serve2.log" env RUST_LOG=warn target/release/slatis-sync serve --config "$config"
server_pid=$bg_pid
# Queued jobs, or 0 once serve has exited (checked below).
queued() { if kill -0 "$server_pid" 2>/dev/null; then q "$1"; else echo 0; fi; }
poll_zero 3600 queued "select count(*) from jobs where status in ('pending', 'running')" >/dev/null
kill -0 "$server_pid" 2>/dev/null || { echo "serve exited:" >&2; tail -20 "$work/serve2.log" >&2; exit 1; }
drain=$(echo "$(date +%s.%N) - $start" | bc)
jobs=$(q "select status || '=' || count(*) from jobs group by status" | tr '\n' ' ')
bg_stop "$server_pid"
product_rps=$(echo "$count * 2 / $drain" | bc -l)
printf '   slatis-sync drained %d jobs (%d requests) in %.2fs: %.0f requests/s; jobs: %s\n' "$count" $((count * 2)) "$drain" "$product_rps" "$jobs"

json=$(target/release/requestloop --base-url "http://127.0.0.1:$sink_port" --count "$count" --concurrency 32 --json | tail -1)
loop_rps=$(json_field "$json" rps)
printf '   plain request loop: %d requests in %.2fs: %.0f requests/s\n' $((count * 2)) "$(json_field "$json" seconds)" "$loop_rps"
echo
printf '%-22s %12s\n' row requests/s
printf '%-22s %12.0f\n' "slatis-sync delivery" "$product_rps" "plain loop" "$loop_rps"
printf '%-22s %12.2f\n' "ratio (product/loop)" "$(echo "$product_rps / $loop_rps" | bc -l)"
