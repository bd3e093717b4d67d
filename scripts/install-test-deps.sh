#!/usr/bin/env bash
# Installs what the test suite needs beyond cargo (tmux for the TUI end-to-end test). Fails
# when something cannot be installed, so nothing is silently skipped.
set -euo pipefail

missing=()
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "installing ${missing[*]}" >&2
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
for tool in "${missing[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool could not be installed" >&2; exit 1; }
done
