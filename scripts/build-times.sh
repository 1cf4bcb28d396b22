#!/usr/bin/env bash
# Measures the build times that decide how the repository is split into crates (issue 13):
# a debug build of the exporter from its dependencies, incremental rebuilds after touching the
# decoder and after touching the wiring (app.rs), the decoder's unit tests after touching the
# decoder, and the fuzz crate's plain (non-instrumented) build. Each row runs RUNS times (the
# machine may be shared and noisy); prints a table of seconds.
#
#   scripts/build-times.sh            # 2 runs of each row
#   RUNS=3 scripts/build-times.sh
#   SKIP_FUZZ=1 scripts/build-times.sh
#
# Works on both layouts: the decoder in src/decode/ (one crate) or in crates/decode/ (package
# powerbi-exporter-decode). Only mtimes are touched; no source changes.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-2}
if [ -d crates/decode ]; then
  layout="workspace (crates/decode)"
  decoder_file=crates/decode/src/event.rs
  clean_packages=(-p powerbi-exporter -p powerbi-exporter-decode)
  decoder_tests=(cargo test -p powerbi-exporter-decode --lib --no-run)
else
  layout="one crate (src/decode)"
  decoder_file=src/decode/event.rs
  clean_packages=(-p powerbi-exporter)
  decoder_tests=(cargo test --lib --no-run)
fi

# Seconds, with one decimal, that the command took; its output goes to a log.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
timed() {
  local t0 t1
  t0=$(date +%s.%N)
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "failed: $*" >&2
    exit 1
  fi
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}

rows=()
row() { # LABEL TIMES...
  local label=$1
  shift
  rows+=("$(printf '%-52s %s' "$label" "$*")")
}

# Everything the rows rebuild is built once first, so each row measures only its own work.
echo "== warming up ($layout)" >&2
cargo build --quiet
"${decoder_tests[@]}" --quiet
if [ "${SKIP_FUZZ:-0}" != 1 ]; then cargo build --quiet --manifest-path fuzz/Cargo.toml; fi

measure() { # LABEL PREPARE-COMMAND -- BUILD-COMMAND...
  local label=$1 prepare=$2 times=() i
  shift 3
  for ((i = 1; i <= runs; i++)); do
    echo "== $label, run $i" >&2
    eval "$prepare"
    times+=("$(timed "$@")")
  done
  row "$label" "${times[@]}"
}

measure "cargo build (exporter crates cleaned)" 'cargo clean --quiet "${clean_packages[@]}"' -- \
  cargo build
measure "cargo build after touching the decoder" 'touch "$decoder_file"' -- cargo build
measure "cargo build after touching src/app.rs" 'touch src/app.rs' -- cargo build
measure "decoder unit tests after touching the decoder" 'touch "$decoder_file"' -- \
  "${decoder_tests[@]}"
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  measure "fuzz crate build after touching the decoder" 'touch "$decoder_file"' -- \
    cargo build --manifest-path fuzz/Cargo.toml
fi

echo
echo "Build times in seconds, $runs runs each; layout: $layout; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-52s %s\n' "build" "runs"
printf '%s\n' "${rows[@]}"
