#!/bin/bash
# Debian's Chromium for the real-browser test (`make browser`), installed with apt-get when
# missing. Prints exactly one line: where Chromium is, or why it is not there; the test then
# skips with that line as its reason. Never downloads a browser build of its own (no
# `playwright install`). Always exits 0.
set -uo pipefail

find_chromium() {
  local c
  for c in /usr/lib/chromium/chromium "$(command -v chromium || true)" \
           "$(command -v chromium-browser || true)"; do
    if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return 0; fi
  done
  return 1
}

version() { "$1" --version 2>/dev/null | head -n 1 | sed 's/[[:space:]]*$//'; }

if path=$(find_chromium); then
  echo "chromium: $path ($(version "$path"))"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium: not installed, and installing it needs root (apt-get install chromium)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not installed, and there is no apt-get here to install it"
  exit 0
fi
log=$(mktemp)
export DEBIAN_FRONTEND=noninteractive
if { apt-get install -y -qq chromium >"$log" 2>&1 \
     || { apt-get update -qq >>"$log" 2>&1 && apt-get install -y -qq chromium >>"$log" 2>&1; }; } \
   && path=$(find_chromium); then
  echo "chromium: installed $path with apt-get ($(version "$path"))"
else
  echo "chromium: apt-get install chromium failed: $(grep -v '^\s*$' "$log" | tail -n 1)"
fi
rm -f "$log"
