#!/usr/bin/env bash
# Many tenants, one file each (`tenants_dir:`): start-up time and resident memory, then
# the cost of a reload with nothing changed and with one tenant's file changed.
#
#   scripts/bench-tenants.sh [--tenants N]      (default 10000; release build)
#
# Targets (issue 12): N = 10,000 ready in < 1 s and < 100 MB resident.
set -euo pipefail
cd "$(dirname "$0")/.."
tenants=10000
while [ $# -gt 0 ]; do
  case "$1" in
    --tenants) tenants="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

bench_scratch
cargo build --release --quiet --bin slatis-sync   # the tenants' CRM is never called
mb() { echo "scale=1; $1 / 1024" | bc; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

port=$(free_port) admin=$(free_port)
token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
{
  config_head "$port" "$admin" "sqlite://$work/tenants.db" | sed '$d'   # no `tenants:`
  echo "tenants_dir: tenants.d"
} >"$work/config.yaml"
sed -i "s#^admin: { listen: \"\\(.*\\)\" }#admin: { listen: \"\\1\", token: \"$token\" }#" "$work/config.yaml"
mkdir "$work/tenants.d"
# tenant_yaml writes `  NAME:` then the body indented by four: a file holds the body.
body=$(tenant_yaml NAME whsec_bench_NUM "http://127.0.0.1:1" BOOKING_CREATED | sed '1d; s/^    //')
for i in $(seq "$tenants"); do
  printf '%s\n' "${body//NUM/$i}" >"$work/tenants.d/t$i.yaml"
done
echo "== $tenants tenants in $work/tenants.d ($(du -sh "$work/tenants.d" | cut -f1)), $(nproc) cores"

serve "$work/config.yaml" "$port" "$work/serve.log"
pid=$bg_pid
ready=$serve_ms
sleep 1
rss1=$(proc_kb "$pid" VmRSS)
sleep 4   # the allocator returns the load's freed pages after a short delay
printf 'start-up: %d ms to /healthz 200; VmRSS %s MB 1 s later, %s MB 5 s later; VmHWM %s MB   (targets < 1000 ms, < 100 MB)\n' \
  "$ready" "$(mb "$rss1")" "$(mb "$(proc_kb "$pid" VmRSS)")" "$(mb "$(proc_kb "$pid" VmHWM)")"

reload() {
  local start code
  start=$(date +%s%N)
  code=$(curl -s -o "$work/reload.json" -w '%{http_code}' -X POST -H "authorization: Bearer $token" \
    "http://127.0.0.1:$admin/admin/api/reload")
  [ "$code" = 200 ] || { echo "reload answered $code: $(cat "$work/reload.json")" >&2; exit 1; }
  printf 'reload, %s: %d ms, VmRSS after %s MB\n' "$1" "$(ms_since "$start")" "$(mb "$(proc_kb "$pid" VmRSS)")"
}
reload "nothing changed"
sed -i 's#/meetings/#/appointments/#' "$work/tenants.d/t1.yaml"
reload "one file changed"
for i in $(seq "${RELOADS:-0}"); do reload "again ($i)"; done
bg_stop "$pid"
