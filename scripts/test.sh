#!/usr/bin/env bash
# The whole test suite: style, lints, docs, engine purity, and every test (unit, property,
# end-to-end against the real binary). Installs what it needs on a fresh Debian machine.
# Usage: ./scripts/test.sh            (CI calls exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Debian packages the end-to-end tests use: SIPp and baresip (its headless core) for voice, espeak-ng (spoken prompts) and sox (test audio) for media, Node
# for the browser tests (which install Chromium and fonts themselves, tests/e2e/run.sh), curl for
# readiness checks, swaks for email, Dovecot for IMAP polling and Postfix as the MTA in front
# (each test starts a private instance on a free port with its own config under /tmp; the
# system services are not used).
need_pkgs=(sip-tester baresip-core espeak-ng sox curl swaks dovecot-imapd postfix)
command -v node >/dev/null 2>&1 || need_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
if ((${#need_pkgs[@]})); then
  missing=()
  for p in "${need_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  fi
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "engine purity: no runtime, database or HTTP crate under the sans-IO engines"
for crate in switchboard-model switchboard-routing switchboard-flow switchboard-media switchboard-analytics switchboard-sip; do
  tree=$(cargo tree -p "$crate" -e normal --prefix none --locked)
  for banned in tokio sqlx async-nats axum hyper; do
    if grep -qE "^${banned} v" <<<"$tree"; then
      echo "purity check failed: $crate depends on $banned"; exit 1
    fi
  done
done
echo "ok: model, routing, flow, media, analytics and sip are free of tokio, sqlx, async-nats, axum, hyper"

step "benchmarks compile"
cargo bench -p switchboard-routing --no-run --locked --quiet

step "cargo test (workspace)"
set +e
# A test that hangs fails the run (exit 124) instead of running into CI's limit.
timeout --kill-after=30 "${TEST_TIMEOUT_S:-2400}" \
  cargo test --workspace --locked --no-fail-fast 2>&1 | tee target/test-output.txt
status=${PIPESTATUS[0]}
if [ "$status" -eq 124 ]; then echo "cargo test did not finish within ${TEST_TIMEOUT_S:-2400} s"; failed_timeout=1; fi
set -e
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' target/test-output.txt | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
failed=$((failed + ${failed_timeout:-0}))
ignored=$(grep -Eo '[0-9]+ ignored' target/test-output.txt | awk '{s+=$1} END {print s+0}')

step "browser end-to-end tests (headless Chromium, Playwright)"
set +e
SWITCHBOARD_BIN="$PWD/target/debug/switchboard" tests/e2e/run.sh 2>&1 | tee target/e2e-output.txt
e2e_status=${PIPESTATUS[0]}
set -e
e2e_pass=$(grep -Eo '^ℹ pass [0-9]+' target/e2e-output.txt | awk '{print $3}' | tail -n1)
e2e_fail=$(grep -Eo '^ℹ fail [0-9]+' target/e2e-output.txt | awk '{print $3}' | tail -n1)
passed=$((passed + ${e2e_pass:-0}))
failed=$((failed + ${e2e_fail:-0}))
if [ "$e2e_status" -ne 0 ] && [ "${e2e_fail:-0}" -eq 0 ]; then failed=$((failed + 1)); fi

echo
echo "${passed} passed, ${failed} failed, ${ignored} skipped"
if [ "$status" -ne 0 ]; then exit "$status"; fi
exit "$e2e_status"
