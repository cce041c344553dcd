#!/usr/bin/env bash
# Browser end-to-end tests of the pages: starts the switchboard binary on a fresh data directory
# and runs tests/e2e/*.test.mjs with node's test runner against it, in headless Debian Chromium
# driven by playwright-core (no browser download). Screenshots go to artifacts/ at the repo root.
#
#   SWITCHBOARD_BIN=target/release/switchboard tests/e2e/run.sh [FILE.test.mjs ...]
#
# With file names, only those run (from tests/e2e). Mail the server sends goes to a little SMTP
# sink (smtp-sink.mjs, the relay); the tests find what it received in E2E_SINK_DIR, and the
# server's SMTP listener at SWITCHBOARD_SMTP_ADDR.
#
# Nothing is built here: build the binary first (cargo build [--release] -p switchboard-server).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

bin="${SWITCHBOARD_BIN:-}"
if [[ -z "$bin" ]]; then
  for b in "$root/target/release/switchboard" "$root/target/debug/switchboard"; do
    if [[ -x "$b" ]]; then bin="$b"; break; fi
  done
fi
if [[ -z "$bin" || ! -x "$bin" ]]; then
  echo "e2e: set SWITCHBOARD_BIN to a built switchboard binary (cargo build -p switchboard-server)" >&2
  exit 2
fi
bin="$(realpath "$bin")"

if [[ ! -x /usr/bin/chromium ]]; then
  echo "e2e: installing Debian chromium" >&2
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
# Arabic and Persian glyphs and emoji for the screenshots (a browser elsewhere has its own).
fonts=()
fc-list 2>/dev/null | grep -qi 'arabic' || fonts+=(fonts-noto-core)
fc-list 2>/dev/null | grep -qi 'emoji' || fonts+=(fonts-noto-color-emoji)
if [[ ${#fonts[@]} -gt 0 ]]; then
  { apt-get update -qq && apt-get install -y -qq "${fonts[@]}" >/dev/null; } 2>/dev/null \
    || echo "e2e: could not install ${fonts[*]}; screenshots may show boxes for some glyphs" >&2
fi

cd "$here"
npm ci --no-audit --no-fund --loglevel=error

data="$(mktemp -d)"
log="$data/server.log"
mkdir -p "$root/artifacts"
pid=""
sinkpid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [[ -n "$sinkpid" ]] && kill -0 "$sinkpid" 2>/dev/null; then
    kill -TERM "$sinkpid" 2>/dev/null || true
    wait "$sinkpid" 2>/dev/null || true
  fi
  if [[ "${KEEP_E2E_DATA:-}" != 1 ]]; then rm -rf "$data"; else echo "e2e: data kept in $data" >&2; fi
}
trap cleanup EXIT

sinkdir="$data/sink"
mkdir -p "$sinkdir"
node "$here/smtp-sink.mjs" "$sinkdir" >"$data/sink.log" 2>&1 &
sinkpid=$!
sinkport=""
for _ in $(seq 1 100); do
  sinkport="$(sed -n 's/^sink=\([0-9]*\)$/\1/p' "$data/sink.log" | head -n1)"
  [[ -n "$sinkport" ]] && break
  sleep 0.1
done
if [[ -z "$sinkport" ]]; then
  echo "e2e: the SMTP sink did not start:" >&2
  cat "$data/sink.log" >&2
  exit 1
fi

SWITCHBOARD_HTTP=127.0.0.1:0 SWITCHBOARD_SIP=127.0.0.1:0 SWITCHBOARD_SMTP=127.0.0.1:0 SWITCHBOARD_DATA="$data/data" \
  SWITCHBOARD_SMTP_RELAY="127.0.0.1:$sinkport" \
  "$bin" serve --data "$data/data" >"$log" 2>&1 &
pid=$!

addr=""
for _ in $(seq 1 300); do
  addr="$(sed -n 's/^http=\([0-9.:]*\)$/\1/p' "$log" | head -n1)"
  [[ -n "$addr" ]] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "e2e: the server did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$addr" ]]; then
  echo "e2e: no http= line from the server within 30 s" >&2
  cat "$log" >&2
  exit 1
fi
for _ in $(seq 1 100); do
  curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
smtp="$(sed -n 's/^smtp=\([0-9.:]*\)$/\1/p' "$log" | head -n1)"
echo "e2e: server at http://$addr (data $data), smtp $smtp, relay sink 127.0.0.1:$sinkport" >&2

files=()
if [[ $# -gt 0 ]]; then
  for f in "$@"; do files+=("$here/$(basename "$f")"); done
else
  files=("$here"/*.test.mjs)
fi
status=0
SWITCHBOARD_URL="http://$addr" SWITCHBOARD_SMTP_ADDR="$smtp" E2E_SINK_DIR="$sinkdir" ARTIFACTS="$root/artifacts" \
  timeout --kill-after=10 "${E2E_TIMEOUT_S:-900}" \
  node --test --test-concurrency=1 --test-timeout=300000 --test-force-exit --test-reporter=spec "${files[@]}" \
  || status=$?
if [[ $status -eq 124 ]]; then echo "e2e: the browser tests did not finish within ${E2E_TIMEOUT_S:-900} s" >&2; fi
if [[ $status -ne 0 ]]; then
  echo "e2e: failed; the server log follows" >&2
  tail -n 80 "$log" >&2
fi
exit $status
