#!/usr/bin/env bash
# Ingest benchmark: signed webhooks acknowledged per second by `slatis-sync serve` on SQLite
# (or PostgreSQL).
#
#   scripts/bench-ingest.sh [--count N] [--concurrency C] [--postgres URL] [--peer PATH/TO/seed-reference.mjs]
#
# Builds release binaries, starts the server on a fresh SQLite file (with --postgres URL: a
# fresh schema of that database, dropped afterwards; psql must be installed) with one tenant whose
# BOOKING_CREATED route has two http steps in dry run (so the workers claim, render and
# finish every job while ingest runs: the store does both), and drives it with `loadgen`
# (distinct events, keep-alive connections, 127.0.0.1 only). With --peer it runs the same
# load against a peer receiver (node) that keeps its queue in memory, for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
count=20000 concurrency=64 peer="" postgres=""
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --peer) peer="$2"; shift 2 ;;
    --postgres) postgres="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

cargo build --release --quiet --bin slatis-sync && cargo build --release --quiet -p slatis-testkit --bin loadgen
work=$(mktemp -d)
schema="bench_$$_$RANDOM"
cleanup() {
  kill $server_pid $peer_pid 2>/dev/null || true
  [ -n "$postgres" ] && psql -q "$postgres" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
server_pid="" peer_pid=""
port=$((20000 + RANDOM % 20000))
if [ -n "$postgres" ]; then
  psql -q "$postgres" -c "CREATE SCHEMA $schema"
  case "$postgres" in *\?*) sep='&' ;; *) sep='?' ;; esac
  storage_url="$postgres${sep}options=-csearch_path%3D$schema"
  backend="PostgreSQL (schema $schema)"
  query() { psql -qtA "$storage_url" -c "$1"; }
else
  storage_url="sqlite://$work/bench.db"
  backend="SQLite, synchronous=FULL"
  query() { sqlite3 "$work/bench.db" "$1"; }
fi
cat > "$work/bench.yaml" <<YAML
server: { listen: 127.0.0.1:$port }
storage: { url: "$storage_url" }
tenants:
  bench:
    signing_secrets: [whsec_bench]
    connectors:
      crm: { type: http, dry_run: true, base_url: "https://crm.example.com" }
    routes:
      BOOKING_CREATED:
        - id: contact
          connector: crm
          action: request
          method: PUT
          path: "/contacts/{{lower data.attendee.email}}"
          json: { email: "{{lower data.attendee.email}}", first: "{{first_name data.attendee.name}}", last: "{{last_name data.attendee.name}}" }
        - connector: crm
          action: request
          method: PUT
          path: "/meetings/{{data.id}}"
          json: { contact: "{{steps.contact.id}}", start: "{{data.start_time}}" }
YAML
RUST_LOG=warn target/release/slatis-sync serve --config "$work/bench.yaml" > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

echo "== slatis-sync serve ($backend, deliveries running in dry run)"
echo "   $(nproc) cores; $count events, $concurrency connections"
target/release/loadgen --url "http://127.0.0.1:$port/webhooks/bench" --secret whsec_bench --count "$count" --concurrency "$concurrency"
start=$(date +%s.%N)
for _ in $(seq 600); do
  left=$(query "select count(*) from jobs where status != 'done'" 2>/dev/null || echo 1)
  [ "$left" = "0" ] && break
  sleep 0.1
done
drained=$(echo "$(date +%s.%N) - $start" | bc)
echo "   stored: $(query "select count(*) from events") events; jobs by status: $(query "select status || '=' || count(*) from jobs group by status" | tr '\n' ' ')"
echo "   the dry-run deliveries finished ${drained}s after the last acknowledgement"

if [ -n "$peer" ]; then
  peer_port=$((port + 1))
  SLATIS_WEBHOOK_SECRET=whsec_bench PORT=$peer_port node "$peer" > "$work/peer.log" 2>&1 &
  peer_pid=$!
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$peer_port/" && break; sleep 0.1; done
  echo "== peer: $(basename "$peer") (node, in-memory queue, nothing persisted)"
  target/release/loadgen --url "http://127.0.0.1:$peer_port/webhooks/bench" --secret whsec_bench --count "$count" --concurrency "$concurrency"
fi
