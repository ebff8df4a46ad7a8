#!/usr/bin/env bash
# Resource benchmark of `slatis-sync serve` (SQLite store, everything on 127.0.0.1):
#   (a) resident memory (VmRSS) idle with 100 tenants configured, 3 s after /healthz;
#   (b) peak resident memory (VmHWM) over an ingest run like bench.sh's sqlite row (N events,
#       default 20000, 64 connections, every event delivered for real to `sink`) until the
#       deliveries have finished;
#   (c) resident memory with a backlog of B queued jobs (default 1000000), sampled every
#       second for S seconds (default 20) while serve drains it to the sink. The backlog is
#       built fast: 1000 events ingested while no CRM listens, serve stopped, their jobs
#       reset to pending, then the rows cloned with sqlite3 (recursive CTE, distinct
#       event ids and order keys);
#   (d) start-up time with 1000 tenants, on a fresh SQLite file (migrations included): from
#       process start to /healthz answering 200 (polled every 10 ms), and VmRSS then.
#
#   scripts/bench-resources.sh [--count N] [--backlog B] [--sample S]
#
# Each figure is printed beside its target: idle 100 tenants < 50 MB, under ingest
# < 150 MB, the 1M backlog not raising it, 1000-tenant start < 1 s.
set -euo pipefail
cd "$(dirname "$0")/.."
count=20000 backlog=1000000 sample=20
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count="$2"; shift 2 ;;
    --backlog) backlog="$2"; shift 2 ;;
    --sample) sample="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$backlog" -ge 1000 ] || { echo "--backlog must be at least 1000" >&2; exit 2; }
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

bench_scratch
bench_build loadgen sink

secret=whsec_bench
mb() { echo "scale=1; $1 / 1024" | bc; }
sink_port=$(free_port)
bg_start "$work/sink.log" target/release/sink --listen "127.0.0.1:$sink_port"
wait_http "http://127.0.0.1:$sink_port/"
sink="http://127.0.0.1:$sink_port"

# config NAME TENANTS: a config of TENANTS tenants (bench, or t1..tN), on $work/NAME.db;
# sets $port.
config() {
  port=$(free_port)
  local admin
  admin=$(free_port)
  {
    config_head "$port" "$admin" "sqlite://$work/$1.db"
    if [ "$2" = 1 ]; then
      tenant_yaml bench "$secret" "$sink" BOOKING_CREATED
    else
      for i in $(seq "$2"); do tenant_yaml "t$i" "${secret}_$i" "$sink" BOOKING_CREATED; done
    fi
  } >"$work/$1.yaml"
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"

# (a)
config idle 100
serve "$work/idle.yaml" "$port" "$work/idle.log"
pid=$bg_pid
sleep 3
idle=$(proc_kb "$pid" VmRSS)
bg_stop "$pid"
printf '(a) idle, 100 tenants:          VmRSS %6s MB   (target < 50 MB)\n' "$(mb "$idle")"

# (b)
config ingest 1
serve "$work/ingest.yaml" "$port" "$work/ingest.log"
pid=$bg_pid
target/release/loadgen --url "http://127.0.0.1:$port/webhooks/bench" --secret "$secret" --count "$count" --concurrency 64 >"$work/loadgen.log"
iq() { sqlite3 "$work/ingest.db" "$1"; }
poll_zero 600 iq "select count(*) from jobs where status in ('pending', 'running')" >/dev/null
peak=$(proc_kb "$pid" VmHWM)
after=$(proc_kb "$pid" VmRSS)
bg_stop "$pid"
printf '(b) ingest of %d events + deliveries: VmHWM %6s MB, VmRSS after %s MB   (target < 150 MB)\n' \
  "$count" "$(mb "$peak")" "$(mb "$after")"

# (c)
config backlog 1
dead_sink=$(free_port)   # nothing listens here: deliveries fail (retryable) and stay queued
sed -i "s#$sink#http://127.0.0.1:$dead_sink#" "$work/backlog.yaml"
serve "$work/backlog.yaml" "$port" "$work/backlog1.log"
pid=$bg_pid
target/release/loadgen --url "http://127.0.0.1:$port/webhooks/bench" --secret "$secret" --count 1000 --concurrency 64 >/dev/null
bg_stop "$pid"
copies=$((backlog / 1000 - 1))
start=$(date +%s.%N)
sqlite3 "$work/backlog.db" <<SQL
DELETE FROM attempts;
UPDATE jobs SET status = 'pending', attempts = 0, rate_limited = 0, run_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000,
  lease_owner = NULL, lease_until = NULL, last_error = NULL, steps_done = 0, step_results = '{}';
CREATE TEMP TABLE k AS WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < $copies) SELECT n FROM k;
INSERT INTO events (id, tenant, event_type, booking_id, body, received_at, jobs)
  SELECT e.id || '_' || k.n, e.tenant, e.event_type, e.booking_id || '_' || k.n, e.body, e.received_at, e.jobs FROM events e, k;
INSERT INTO jobs (event_id, tenant, connector, lane, order_key, status, attempts, run_at, steps_done, step_results, created_at, updated_at)
  SELECT j.event_id || '_' || k.n, j.tenant, j.connector, j.lane, j.order_key || '_' || k.n, 'pending', 0, j.run_at, 0, '{}', j.created_at, j.updated_at
  FROM jobs j, k;
SQL
config backlog 1   # the same file, the live sink, fresh ports
queued=$(sqlite3 "$work/backlog.db" "select count(*) from jobs where status = 'pending'")
printf '    backlog of %d pending jobs built in %.1fs\n' "$queued" "$(echo "$(date +%s.%N) - $start" | bc)"
serve "$work/backlog.yaml" "$port" "$work/backlog2.log"
pid=$bg_pid
max=0 samples=""
for _ in $(seq "$sample"); do
  sleep 1
  r=$(proc_kb "$pid" VmRSS)
  samples+=" $(mb "$r")"
  if [ "$r" -gt "$max" ]; then max=$r; fi
done
hwm=$(proc_kb "$pid" VmHWM)
bg_stop "$pid"
done_jobs=$(sqlite3 "$work/backlog.db" "select count(*) from jobs where status = 'done'")
printf '(c) %d queued jobs, %ds draining: VmRSS max %s MB, VmHWM %s MB (%d jobs delivered meanwhile)   (target: no higher than (b))\n' \
  "$queued" "$sample" "$(mb "$max")" "$(mb "$hwm")" "$done_jobs"
echo "    VmRSS each second (MB):$samples"

# (d)
config start 1000
serve "$work/start.yaml" "$port" "$work/start.log"
pid=$bg_pid
ms=$serve_ms
rss=$(proc_kb "$pid" VmRSS)
bg_stop "$pid"
printf '(d) start-up with 1000 tenants: %d ms to /healthz 200, VmRSS then %s MB   (target < 1000 ms)\n' "$ms" "$(mb "$rss")"
