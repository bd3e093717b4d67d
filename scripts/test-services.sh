#!/usr/bin/env bash
# Throw-away PostgreSQL and NATS servers on loopback for the tests that need them.
#
#   services=$(scripts/test-services.sh start) && eval "$services"   # starts both, prints the exports below
#   scripts/test-services.sh stop              # stops what that `start` started
#
# Exports CONCLAVE_TEST_POSTGRES (postgres://...) and CONCLAVE_TEST_NATS (nats://...), and
# CONCLAVE_TEST_SERVICES (the temp dir holding both, which is how `stop` finds them, so runs
# side by side never stop each other's). PostgreSQL refuses to run as root, so as root it runs
# as the `postgres` user. Fails, never skips, when either cannot be had.
set -euo pipefail

# Says why and stops whatever this `start` already started (bash scoping lets it see `dir`).
fail() {
  echo "test-services: $*" >&2
  [ -n "${dir:-}" ] && CONCLAVE_TEST_SERVICES=$dir stop
  exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

install_missing() {
  local missing=()
  command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
  pg_bin >/dev/null 2>&1 || missing+=(postgresql)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "test-services: installing ${missing[*]}" >&2
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  command -v nats-server >/dev/null 2>&1 || fail "nats-server could not be installed"
  pg_bin >/dev/null 2>&1 || fail "PostgreSQL could not be installed"
}

# The newest installed PostgreSQL's bin dir (Debian keeps initdb and pg_ctl there).
pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] || return 1
  echo "$dir"
}

# Runs a command as the user PostgreSQL runs as (postgres when we are root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  install_missing
  local bin dir pg_port nats_port
  bin=$(pg_bin) || fail "no PostgreSQL found under /usr/lib/postgresql"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/conclave-services.XXXXXX")
  chmod 755 "$dir"
  mkdir -p "$dir/pg"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/pg"
  pg_port=$(free_port)
  as_pg "$bin/initdb" -D "$dir/pg/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || fail "initdb failed: $(tail -3 "$dir/initdb.log")"
  as_pg "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $dir/pg -c fsync=off" start >/dev/null \
    || fail "PostgreSQL did not start: $(tail -3 "$dir/pg/server.log")"
  as_pg "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres conclave_test \
    || fail "cannot create the test database"

  nats_port=$(free_port)
  nats-server -a 127.0.0.1 -p "$nats_port" -l "$dir/nats.log" >/dev/null 2>&1 &
  echo $! >"$dir/nats.pid"
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null || fail "nats-server did not start"

  cat <<EOF
export CONCLAVE_TEST_SERVICES=$dir
export CONCLAVE_TEST_POSTGRES=postgres://postgres@127.0.0.1:$pg_port/conclave_test
export CONCLAVE_TEST_NATS=nats://127.0.0.1:$nats_port
EOF
}

stop() {
  local dir=${CONCLAVE_TEST_SERVICES:-} bin
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  if bin=$(pg_bin); then
    as_pg "$bin/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  [ -e "$dir/nats.pid" ] && kill "$(cat "$dir/nats.pid")" 2>/dev/null || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
