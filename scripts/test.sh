#!/usr/bin/env bash
# The whole Sluice test suite: formatting, lints, every test in the workspace.
# Installs what the tests need when it can, and fails with a message naming what is missing
# when it cannot; it never skips a test because a tool is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { # need COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ -n "${2:-}" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing $2 (for $1)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  fi
  command -v "$1" >/dev/null 2>&1 || {
    echo "test.sh: '$1' is required by the tests but is not installed; install it (Debian package: ${2:-none, see README})" >&2
    exit 1
  }
}

need cargo ""
need kubectl kubernetes-client
need prometheus prometheus
need chromium chromium
need chromedriver chromium-driver

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
