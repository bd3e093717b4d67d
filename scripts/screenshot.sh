#!/usr/bin/env bash
# Renders assets/screenshot.png from a real run: a server, a teammate, two agents (one asking
# for permission) and the TUI of the person supervising them, captured in tmux.
# Needs tmux, python3 with Pillow (pip install pillow) and the DejaVu fonts.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin=$PWD/target/release/conclave
work=$(mktemp -d)
pids=()
cleanup() {
  tmux -L conclave-shot kill-server 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" serve --bind 127.0.0.1:0 --ephemeral >"$work/serve.out" 2>/dev/null &
pids+=($!)
until grep -q "listening on" "$work/serve.out" 2>/dev/null; do sleep 0.1; done
url="ws://$(sed -n 's/listening on //p' "$work/serve.out")"

as() { local who=$1; shift; CONCLAVE_CONFIG_DIR="$work/$who" "$bin" "$@"; }
as alice register alice --server "$url" --machine laptop >/dev/null
as bob register bob --server "$url" --machine desk >/dev/null
as ci register ci --server "$url" --machine runner >/dev/null
as alice channel create general >/dev/null
as alice channel create ops >/dev/null
as bob join general >/dev/null
as ci join ops >/dev/null

# Two of alice's agents: one over JSON lines (it talks), one over MCP (it asks permission).
mkfifo "$work/reviewer.in" "$work/api.in"
(cd "$work" && CONCLAVE_CONFIG_DIR="$work/alice" "$bin" agent --as reviewer --format jsonl \
  --join general <"$work/reviewer.in" >/dev/null 2>&1) &
pids+=($!)
exec 3>"$work/reviewer.in"
(cd "$work" && CONCLAVE_CONFIG_DIR="$work/alice" "$bin" agent --as api --join general \
  --perm general=converse <"$work/api.in" >/dev/null 2>&1) &
pids+=($!)
exec 4>"$work/api.in"

tmux -L conclave-shot new-session -d -s tui -x 118 -y 30 \
  "CONCLAVE_CONFIG_DIR=$work/alice $bin tui"
sleep 1.5

as bob send general "morning! v2.3 is deployed and the dashboards are green" >/dev/null
sleep 0.3
echo '{"cmd":"send","channel":"general","text":"I reviewed #142: the flaky login test waits on a real clock. Suggest a paused clock."}' >&3
sleep 0.3
as bob send general "@alice can you approve the fix? the api agent is on it" >/dev/null
for n in 1 2 3; do as ci send ops "build $((400 + n)) passed" >/dev/null; done
printf '%s\n' \
  '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"shot","version":"1"}}}' \
  '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
  '{"jsonrpc":"2.0","method":"notifications/claude/channel/permission_request","params":{"request_id":"kqzvx","tool_name":"Bash","description":"run cargo test -p auth","input_preview":"{\"command\":\"cargo test -p auth\"}"}}' >&4
sleep 1.5

tmux -L conclave-shot capture-pane -e -p -t tui >"$work/screen.ans"
python3 scripts/ansi_to_png.py "$work/screen.ans" assets/screenshot.png
echo "wrote assets/screenshot.png"
