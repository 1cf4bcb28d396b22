#!/usr/bin/env bash
# Fuzzes the event decoder, the document splitter and the config parser with cargo-fuzz
# (libFuzzer + AddressSanitizer) for SECONDS per target, on the stable toolchain.
#
#   scripts/fuzz.sh            # CI smoke run: 30 s per target
#   scripts/fuzz.sh 3600       # by hand: an hour per target
#   FUZZ_TARGETS="decode_document" scripts/fuzz.sh 600
#
# Environment:
#   FUZZ_TARGETS       targets to run (default: all three, see fuzz/README.md)
#   FUZZ_FRESH=1       start from the seeds alone (default: keep what earlier runs found in
#                      fuzz/corpus/, which is not committed)
#   FUZZ_JOBS=N        cargo build jobs (default: the number of cores)
#   FUZZ_SANITIZER=none  no AddressSanitizer: about 5 times the executions per second (only
#                      panics, hangs and the memory limits are caught), built apart in
#                      fuzz/target/sanitizer-none
#
# The corpus of each target is fuzz/corpus/<target>, seeded on every run from the repository:
# tests/fixtures/replay, the YAML examples of README.md, fuzz/seeds/<target> and
# tests/fixtures/fuzz-regressions/<target>. A crash (panic, failed check, sanitizer report,
# out-of-memory, timeout) is saved under fuzz/artifacts/<target>/ and makes the script exit 1
# after every target has run; fuzz/README.md says how it becomes a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
case $seconds in '' | *[!0-9]*)
  echo "usage: scripts/fuzz.sh [SECONDS per target]" >&2
  exit 2
  ;;
esac
targets=${FUZZ_TARGETS:-decode_event decode_document config_yaml}
started=$(date +%s)

# cargo-fuzz drives the build with unstable rustc flags (-Zsanitizer=address, sanitizer
# coverage); RUSTC_BOOTSTRAP=1 lets the stable compiler accept them, so no nightly is needed.
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
export RUST_BACKTRACE=1

if ! command -v cargo-fuzz >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo-fuzz" ]; then
  echo "== Installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --version '^0.13' --locked --quiet
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cargo fuzz --version

# cargo-fuzz's defaults: a release build with debug assertions and overflow checks (no -O,
# which would turn them off) and AddressSanitizer. fuzz/Cargo.toml leaves the crates the
# targets never run unoptimised, to shorten the build.
sanitizer=${FUZZ_SANITIZER:-address}
build_flags=(--fuzz-dir fuzz --sanitizer "$sanitizer")
if [ "$sanitizer" != address ]; then
  build_flags+=(--target-dir "fuzz/target/sanitizer-$sanitizer")
fi

echo "== Building fuzz targets"
t0=$(date +%s)
cargo fuzz build "${build_flags[@]}"
echo "   built in $(($(date +%s) - t0)) s"

# One file per event object that sits in an array (API pages, JSON arrays), for decode_event.
split_events() { # FILE OUTDIR
  LC_ALL=C awk -v dir="$2" -v name="$(basename "$1")" '
    {
      line = $0 "\n"; n = length(line)
      for (i = 1; i <= n; i++) {
        c = substr(line, i, 1)
        if (cap) buf = buf c
        if (instr) { if (esc) esc = 0; else if (c == "\\") esc = 1; else if (c == "\"") instr = 0; continue }
        if (c == "\"") { instr = 1; continue }
        if (c == "{" || c == "[") {
          depth++; kind[depth] = c
          if (c == "{" && !cap && kind[depth - 1] == "[") { cap = 1; capdepth = depth; buf = c }
        } else if (c == "}" || c == "]") {
          if (cap && depth == capdepth) {
            out = sprintf("%s/%s-%03d.json", dir, name, ++count); printf "%s", buf > out; close(out); cap = 0
          }
          depth--
        }
      }
    }' "$1"
}

seed() { # TARGET CORPUS
  local target=$1 corpus=$2 f i
  if [ -d "fuzz/seeds/$target" ]; then cp fuzz/seeds/"$target"/* "$corpus"/; fi
  if [ -d "tests/fixtures/fuzz-regressions/$target" ]; then
    for f in tests/fixtures/fuzz-regressions/"$target"/*; do
      [ -f "$f" ] && cp "$f" "$corpus/regression-$(basename "$f")"
    done
  fi
  case $target in
    decode_event)
      for f in tests/fixtures/replay/*.json; do split_events "$f" "$corpus"; done
      for f in tests/fixtures/replay/*.jsonl; do
        i=0
        while IFS= read -r line || [ -n "$line" ]; do
          i=$((i + 1))
          [ -n "$line" ] && printf '%s' "$line" >"$corpus/$(basename "$f")-$i.json"
        done <"$f"
      done
      ;;
    decode_document)
      # Byte 0 picks how the streamed read is chunked: 1 byte, up to 8 varying, up to 64
      # varying with interrupted reads.
      for f in tests/fixtures/replay/*; do
        for mode in 00 43 c6; do
          { printf "\\x$mode"; cat "$f"; } >"$corpus/$(basename "$f")-$mode"
        done
      done
      ;;
    config_yaml)
      LC_ALL=C awk -v dir="$corpus" '
        /^```yaml/ { out = sprintf("%s/README-%02d.yaml", dir, ++n); inblock = 1; next }
        /^```/ && inblock { close(out); inblock = 0; next }
        inblock { print > out }' README.md
      ;;
  esac
}

failed=()
summary=()
for target in $targets; do
  case $target in
    decode_event) max_len=16384 dict=json.dict ;;
    decode_document) max_len=65536 dict=json.dict ;;
    config_yaml) max_len=8192 dict=yaml.dict ;;
    *) echo "unknown fuzz target $target" >&2; exit 2 ;;
  esac
  corpus=fuzz/corpus/$target
  artifacts=fuzz/artifacts/$target
  if [ "${FUZZ_FRESH:-0}" = 1 ]; then rm -rf "$corpus"; fi
  mkdir -p "$corpus" "$artifacts"
  seed "$target" "$corpus"
  log=fuzz/artifacts/$target.log
  echo "== Fuzzing $target for $seconds s ($(ls "$corpus" | wc -l) inputs in $corpus, log $log)"
  # -rss_limit_mb / -malloc_limit_mb: any input that makes the process use 2 GiB, or asks for
  # 256 MiB at once, is reported as a crash (inputs are at most max_len bytes). -timeout: one
  # input running 25 s is a hang.
  set +e
  cargo fuzz run "${build_flags[@]}" "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=2048 -malloc_limit_mb=256 \
    -timeout=25 -dict="fuzz/dicts/$dict" -artifact_prefix="$artifacts/" \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  rate=$(( ${runs:-0} / (${took:-0} > 0 ? ${took:-1} : 1) ))
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  if [ "$rc" -ne 0 ]; then
    echo "!! $target FAILED (exit $rc); from $log:"
    # The panic or sanitizer report with its stack, else the end of the log.
    if grep -qE 'panicked at|==[0-9]+==ERROR' "$log"; then
      sed -n -E '/panicked at|==[0-9]+==ERROR/,+45p' "$log" | head -n 60 | sed 's/^/   /'
    else
      tail -n 40 "$log" | sed 's/^/   /'
    fi
    for a in $(grep -o "Test unit written to [^ ]*" "$log" | sed 's/Test unit written to //'); do
      echo "!! crash input: $a"
      echo "   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run ${build_flags[*]} $target $a"
      echo "   minimize:  RUSTC_BOOTSTRAP=1 cargo fuzz tmin ${build_flags[*]} $target $a"
    done
    failed+=("$target")
    summary+=("$target: FAILED, ${runs:-?} runs")
  else
    summary+=("$target: ok, ${runs:-?} runs in ${took:-?} s (${rate} exec/s), ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l) inputs")
  fi
done

echo "== Fuzz summary ($(($(date +%s) - started)) s in all)"
printf '   %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]} (inputs under fuzz/artifacts/; see fuzz/README.md)" >&2
  exit 1
fi
