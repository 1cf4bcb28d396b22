#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what the tests need when it is
# missing (promtool, from Debian's `prometheus` package), then formatting, lints and tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: promtool (prometheus) and openssl (test certificates).
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== Installing ${missing[*]} (Debian packages)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
promtool --version | head -1

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --all-targets
echo "== soak (alone, so nothing else competes for the 2 cores; SOAK_SECONDS=${SOAK_SECONDS:-150})"
# Passes only when exactly the soak ran and passed: a filter that matches no test makes cargo
# print "running 0 tests" and succeed, which must not count as a soak.
run_soak() {
  local filter=$1 soak_log
  soak_log=$(mktemp)
  if ! cargo test --test it "$filter" -- --ignored --exact --nocapture >"$soak_log" 2>&1; then
    cat "$soak_log"
    rm -f "$soak_log"
    return 1
  fi
  if ! grep -q '^test result: ok\. 1 passed;' "$soak_log" || ! grep -q '^soak ' "$soak_log"; then
    cat "$soak_log"
    rm -f "$soak_log"
    echo "== the soak did not run: '$filter' matched no test, or it printed no measurement" >&2
    return 1
  fi
  grep -E '^soak |test result' "$soak_log"
  rm -f "$soak_log"
}
run_soak soak::soak_memory_stays_flat_and_scrapes_stay_fast
echo "== fuzz smoke (FUZZ_SECONDS=${FUZZ_SECONDS:-30} per target; longer by hand: scripts/fuzz.sh 3600)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
echo "== benchmarks build"
cargo bench --no-run --quiet
