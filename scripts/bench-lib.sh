# Shared helpers of the benchmark scripts (bench.sh, bench-delivery.sh,
# bench-resources.sh); sourced, never run. Expects `set -euo pipefail`, the repository
# root as working directory, and `$work`, a scratch directory (`bench_scratch` makes one and removes it on exit).
# Every process started with `bg_start` is stopped by `bg_stop_all` (call it from the
# caller's EXIT trap). Everything listens on 127.0.0.1.

bench_pids=()

# bench_build BIN...: release builds of slatis-sync and the named testkit bins, once.
bench_build() {
  local bins=()
  for b in "$@"; do bins+=(--bin "$b"); done
  cargo build --release --quiet --bin slatis-sync
  cargo build --release --quiet -p slatis-testkit "${bins[@]}"
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# bg_start LOG CMD...: starts CMD in the background, output to LOG; its pid in $bg_pid.
bg_start() {
  local log="$1"; shift
  "$@" >"$log" 2>&1 &
  bg_pid=$!
  bench_pids+=("$bg_pid")
}

# bg_stop PID: SIGTERM, then waits for it to exit.
bg_stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# bench_scratch: sets $work to a new scratch directory, removed on exit together with
# every process started by bg_start (for scripts with nothing else to clean up).
bench_scratch() {
  work=$(mktemp -d)
  trap 'bg_stop_all; rm -rf "$work"' EXIT
}

bg_stop_all() {
  for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${bench_pids[@]}"; do wait "$p" 2>/dev/null || true; done
}

# wait_http URL [STATUS]: until URL answers (with STATUS when given); 30 s at most.
wait_http() {
  local code
  for _ in $(seq 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null || true)
    if [ "${2:-}" = "" ] && [ "$code" != "000" ]; then return 0; fi
    if [ "$code" = "${2:-}" ]; then return 0; fi
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

# config_head PORT ADMIN_PORT STORAGE_URL: the config up to `tenants:`. delivery.concurrency
# is the default (32), spelled out because the benchmarks compare against it.
config_head() {
  cat <<YAML
server: { listen: "127.0.0.1:$1" }
admin: { listen: "127.0.0.1:$2" }
storage: { url: "$3" }
delivery: { concurrency: 32 }
tenants:
YAML
}

# tenant_yaml NAME SECRET SINK_URL EVENT: a tenant whose EVENT route delivers for real to
# SINK_URL (http connector, two PUT steps). The instance's own `concurrency` (default 8)
# is raised to delivery.concurrency so that the global limit is the one measured.
tenant_yaml() {
  cat <<YAML
  $1:
    signing_secrets: [$2]
    connectors:
      crm: { type: http, dry_run: false, base_url: "$3", concurrency: 32 }
    routes:
      $4:
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
}

# serve CONFIG PORT LOG: starts `slatis-sync serve` (pid in $bg_pid) and waits for its
# /healthz on PORT to answer 200 (the milliseconds that took in $serve_ms). Fails (with
# the log) if the process exits first: the machine is shared, so a port found free may be
# taken before serve binds it.
serve() {
  local code start
  start=$(date +%s%N)
  bg_start "$3" env RUST_LOG=warn target/release/slatis-sync serve --config "$1"
  for _ in $(seq 3000); do
    if ! kill -0 "$bg_pid" 2>/dev/null; then break; fi
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/healthz" 2>/dev/null || true)
    if [ "$code" = 200 ]; then
      serve_ms=$((($(date +%s%N) - start) / 1000000))
      sleep 0.1
      if kill -0 "$bg_pid" 2>/dev/null; then return 0; fi
      break
    fi
    sleep 0.01
  done
  echo "slatis-sync serve did not come up on port $2:" >&2
  tail -20 "$3" >&2
  return 1
}

# proc_kb PID FIELD: a /proc/PID/status field in kB (VmRSS, VmHWM).
proc_kb() {
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# json_field JSON NAME: a number field of a one-line JSON object.
json_field() {
  sed -E "s/.*\"$2\":([-0-9.eE+]+).*/\1/" <<<"$1"
}

# poll_zero SECONDS CMD...: runs CMD every 0.1 s until it prints 0 (SECONDS at most);
# prints how many seconds that took.
poll_zero() {
  local start left limit=$(($1 * 10))
  shift
  start=$(date +%s.%N)
  for _ in $(seq "$limit"); do
    left=$("$@" 2>/dev/null || echo 1)
    if [ "$left" = "0" ]; then break; fi
    sleep 0.1
  done
  echo "$(date +%s.%N) - $start" | bc
}
