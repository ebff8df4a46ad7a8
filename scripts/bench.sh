#!/usr/bin/env bash
# Ingest benchmark suite: signed webhooks acknowledged per second and their latency, for
# several receivers under the same load, in one table.
#
#   scripts/bench.sh [--count N] [--concurrency C] [--warmup W] [--peer PATH/TO/peer.mjs] [--postgres URL]
#
# Builds release binaries once, then starts each receiver fresh and drives it with
# `loadgen` (N distinct events, default 20000, signed before the clock starts; C keep-alive
# connections, default 64; first W unmeasured warm-up requests, default 1000, on the same
# server):
#   bare        an axum server that reads the body and answers 200: the ceiling;
#   peer        with --peer: a node receiver started as `SLATIS_WEBHOOK_SECRET=… PORT=… node PATH`;
#   sqlite      `slatis-sync serve` on a fresh SQLite file, a tenant whose BOOKING_CREATED route
#               delivers every event for real (two PUT steps) to `sink`, an instant local
#               CRM stand-in; also how long after the last ack the deliveries finished;
#   unrouted    the same server setup, but the tenant has no route for the posted event
#               type (events stored, no jobs);
#   postgres    with --postgres URL: like sqlite on a fresh schema of that database
#               (dropped afterwards; psql must be installed).
# Latencies are send-to-full-answer, in ms. Everything on 127.0.0.1; the load generator
# runs on one thread of the same machine, so it takes CPU from the server it measures.
set -euo pipefail
cd "$(dirname "$0")/.."
count=20000 concurrency=64 warmup=1000 peer="" postgres=""
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --peer) peer="$2"; shift 2 ;;
    --postgres) postgres="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

work=$(mktemp -d)
schema="bench_$$_$RANDOM"
cleanup() {
  bg_stop_all
  if [ -n "$postgres" ]; then psql -q "$postgres" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
bench_build loadgen bare sink

secret=whsec_bench
rows=()   # "name|rps|p50|p99|p999"
notes=()

# measure NAME URL [EVENT]: warm-up, then the measured run; appends a row.
measure() {
  local json event="${3:-BOOKING_CREATED}"
  if [ "$warmup" -gt 0 ]; then
    target/release/loadgen --url "$2" --secret "$secret" --count "$warmup" --concurrency "$concurrency" --event "$event" >/dev/null
  fi
  json=$(target/release/loadgen --url "$2" --secret "$secret" --count "$count" --concurrency "$concurrency" --event "$event" --json | tail -1)
  echo "   $1: $json" >&2
  rows+=("$1|$(json_field "$json" rps)|$(json_field "$json" p50_ms)|$(json_field "$json" p99_ms)|$(json_field "$json" p999_ms)")
}

# live_query SQL: $query_fn SQL while serve ($server_pid) runs; 0 once it has exited.
live_query() { if kill -0 "$server_pid" 2>/dev/null; then "$query_fn" "$1"; else echo 0; fi; }

# slatis NAME STORAGE_URL QUERY_FN ROUTED_EVENT: one fresh `slatis-sync serve` row whose
# tenant routes ROUTED_EVENT; BOOKING_CREATED is posted. QUERY_FN runs SQL on the store:
# when the posted events are routed, waits for their deliveries.
slatis() {
  local port admin sink_port config="$work/$1.yaml" drained
  port=$(free_port) admin=$(free_port) sink_port=$(free_port)
  bg_start "$work/$1.sink.log" target/release/sink --listen "127.0.0.1:$sink_port"
  local sink_pid=$bg_pid
  wait_http "http://127.0.0.1:$sink_port/"
  { config_head "$port" "$admin" "$2"; tenant_yaml bench "$secret" "http://127.0.0.1:$sink_port" "$4"; } >"$config"
  serve "$config" "$port" "$work/$1.log"
  local server_pid=$bg_pid
  measure "$1" "http://127.0.0.1:$port/webhooks/bench"
  if [ "$4" = BOOKING_CREATED ]; then
    query_fn=$3
    drained=$(poll_zero 600 live_query "select count(*) from jobs where status in ('pending', 'running')")
    kill -0 "$server_pid" 2>/dev/null || { echo "serve exited:" >&2; tail -20 "$work/$1.log" >&2; exit 1; }
    notes+=("$1: deliveries (2 PUTs each to the sink) finished ${drained}s after the last ack; jobs: $("$3" "select status || '=' || count(*) from jobs group by status" | tr '\n' ' ')")
  else
    notes+=("$1: $("$3" "select count(*) from events") events stored, $("$3" "select count(*) from jobs") jobs")
  fi
  bg_stop "$server_pid"
  bg_stop "$sink_pid"
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "   SQLite: WAL; acknowledged events commit with synchronous=FULL (group commit), delivery bookkeeping with NORMAL"
echo "   load: $count events after $warmup warm-up requests, $concurrency connections; delivery.concurrency 32"

# bare
port=$(free_port)
bg_start "$work/bare.log" target/release/bare --listen "127.0.0.1:$port"
pid=$bg_pid
wait_http "http://127.0.0.1:$port/"
measure bare "http://127.0.0.1:$port/webhooks/bench"
bg_stop "$pid"

# peer
if [ -n "$peer" ]; then
  port=$(free_port)
  bg_start "$work/peer.log" env SLATIS_WEBHOOK_SECRET="$secret" PORT="$port" node "$peer"
  pid=$bg_pid
  wait_http "http://127.0.0.1:$port/"
  measure peer "http://127.0.0.1:$port/webhooks/bench"
  bg_stop "$pid"
fi

db="$work/sqlite.db"
sqlite_q() { sqlite3 "$db" "$1"; }
slatis sqlite "sqlite://$db" sqlite_q BOOKING_CREATED
db="$work/unrouted.db"
slatis unrouted "sqlite://$db" sqlite_q BOOKING_CANCELLED

if [ -n "$postgres" ]; then
  psql -q "$postgres" -c "CREATE SCHEMA $schema"
  case "$postgres" in *\?*) sep='&' ;; *) sep='?' ;; esac
  pg_url="$postgres${sep}options=-csearch_path%3D$schema"
  pg_q() { psql -qtA "$pg_url" -c "$1"; }
  slatis postgres "$pg_url" pg_q BOOKING_CREATED
fi

bare_rps=$(cut -d'|' -f2 <<<"${rows[0]}")
peer_rps=""
if [ -n "$peer" ]; then peer_rps=$(cut -d'|' -f2 <<<"${rows[1]}"); fi
echo
printf '%-10s %12s %8s %8s %8s %8s %8s\n' row webhooks/s p50_ms p99_ms p99.9_ms x_bare x_peer
for r in "${rows[@]}"; do
  IFS='|' read -r name rps p50 p99 p999 <<<"$r"
  awk -v n="$name" -v r="$rps" -v a="$p50" -v b="$p99" -v c="$p999" -v bare="$bare_rps" -v peer="$peer_rps" 'BEGIN {
    xp = (peer == "") ? "-" : sprintf("%.2f", r / peer)
    printf "%-10s %12.0f %8.2f %8.2f %8.2f %8.2f %8s\n", n, r, a, b, c, r / bare, xp
  }'
done
echo
for n in "${notes[@]}"; do echo "$n"; done
