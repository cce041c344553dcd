#!/usr/bin/env bash
# The whole test suite: style, lints, docs, engine purity, and every test (unit, property,
# end-to-end against the real binary). Installs what it needs on a fresh Debian machine.
# Usage: ./scripts/test.sh            (CI calls exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Debian packages the end-to-end tests use. Nothing is needed yet beyond the Rust toolchain;
# channels that drive real peers (sipp, swaks, chromium) add theirs to this list.
need_pkgs=(sip-tester)
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
for crate in switchboard-model switchboard-routing switchboard-analytics switchboard-sip; do
  tree=$(cargo tree -p "$crate" -e normal --prefix none --locked)
  for banned in tokio sqlx async-nats axum hyper; do
    if grep -qE "^${banned} v" <<<"$tree"; then
      echo "purity check failed: $crate depends on $banned"; exit 1
    fi
  done
done
echo "ok: model, routing, analytics and sip are free of tokio, sqlx, async-nats, axum, hyper"

step "benchmarks compile"
cargo bench -p switchboard-routing --no-run --locked --quiet

step "cargo test (workspace)"
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee target/test-output.txt
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' target/test-output.txt | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
ignored=$(grep -Eo '[0-9]+ ignored' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo
echo "${passed} passed, ${failed} failed, ${ignored} skipped"
exit "$status"
