#!/usr/bin/env bash
# The scale-out benchmark in one run, on this machine: `conclave bench` against a single
# SQLite node, a single PostgreSQL instance, and three instances on PostgreSQL and NATS (the
# subscribers spread over the three). Uses a throw-away PostgreSQL and nats-server
# (scripts/test-services.sh) and the release build; stops everything it started.
#
#   scripts/bench-scale-out.sh [BENCH FLAGS...]     # e.g. --subscribers 100 --messages 10000
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
bin=target/release/conclave
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/test-services.sh stop
  rm -rf "$work"
}
services=$(scripts/test-services.sh start)
trap cleanup EXIT
eval "$services"

# Limits raised so the benchmark measures delivery, not the quotas that protect a server.
limits=(--agent-turns 0 --agent-sends-per-minute 1000000000 --human-sends-per-minute 1000000000
  --max-sessions-per-user 1000000 --max-connections-per-address 1000000
  --max-handshakes-per-address 1000000)

# Starts `serve` with the given flags; prints its ws:// URL once it listens.
serve() {
  local log="$work/serve-${#pids[@]}.out"
  RUST_LOG=warn "$bin" serve --bind 127.0.0.1:0 "${limits[@]}" "$@" >"$log" 2>"$log.err" &
  pids+=($!)
  for _ in $(seq 200); do
    if grep -q '^listening on ' "$log"; then
      echo "ws://$(sed -n 's/^listening on //p' "$log")"
      return
    fi
    sleep 0.05
  done
  echo "serve did not start: $(cat "$log.err")" >&2
  exit 1
}

# A schema of its own for each PostgreSQL run.
schema() {
  local name=$1
  psql "$CONCLAVE_TEST_POSTGRES" -qc "CREATE SCHEMA $name" >/dev/null
  echo "$CONCLAVE_TEST_POSTGRES?options=-c%20search_path%3D$name"
}

echo "== SQLite, one node"
sqlite=$(serve --data-dir "$work/sqlite")
CONCLAVE_CONFIG_DIR="$work/c1" "$bin" bench --server "$sqlite" "$@"

echo "== PostgreSQL, one instance"
single=$(serve --store "$(schema bench_single)")
CONCLAVE_CONFIG_DIR="$work/c2" "$bin" bench --server "$single" "$@"

echo "== PostgreSQL + NATS, three instances"
store=$(schema bench_cluster)
a=$(serve --store "$store" --bus "$CONCLAVE_TEST_NATS")
b=$(serve --store "$store" --bus "$CONCLAVE_TEST_NATS")
c=$(serve --store "$store" --bus "$CONCLAVE_TEST_NATS")
CONCLAVE_CONFIG_DIR="$work/c3" "$bin" bench --server "$a,$b,$c" "$@"
