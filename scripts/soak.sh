#!/usr/bin/env bash
# Crash soak: signed webhooks for many bookings (create, reschedules, cancel) against a real
# `slatis-sync serve` that is SIGKILLed and restarted every few seconds, while the mock CRM
# injects 429s, 5xx, timeouts and connection resets. Checks: every acknowledged event is
# delivered or dead-lettered with a reason (lost = 0), no booking's events reach the CRM
# out of order, exactly one CRM record per booking in its final state.
#
#   scripts/soak.sh [--webhooks 20000] [--bookings 5000] [--kill-every 3s] [--fault-rate 0.1]
#
#   [--rate 300] (webhooks per second, so kills land during ingest too)
#
# CI runs a short one: scripts/soak.sh --webhooks 2000 --bookings 500 --rate 200 --kill-every 2s
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin slatis-sync
cargo build --release --quiet -p slatis-testkit --bin soak
exec target/release/soak --bin target/release/slatis-sync "$@"
