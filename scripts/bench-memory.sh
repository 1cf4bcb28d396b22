#!/usr/bin/env bash
# Peak memory of `--once` and `top` over one file of N events (default 1,000,000), a JSON
# array as archivers save it (~1 GB), so the streamed path is measured: the exporter must not
# hold the events. Prints peak RSS (ru_maxrss) and wall time of each run.
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-1000000}"
cargo build --release --quiet
bin=target/release/powerbi-exporter
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" simulate --events "$events" --days 7 --end 1795132800 --format array --out "$dir/events.json"
echo "input: $events events, $(du -m "$dir/events.json" | cut -f1) MB"
python3 - "$bin" "$dir/events.json" <<'PY'
import os, subprocess, sys, time
bin, path = sys.argv[1], sys.argv[2]
for name, args in [("--once", [bin, "--once", "--replay", path]), ("top", [bin, "top", "--replay", path])]:
    start = time.monotonic()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    took = time.monotonic() - start
    assert os.waitstatus_to_exitcode(status) == 0, f"{name} failed"
    print(f"{name:7} peak RSS {usage.ru_maxrss / 1024:.1f} MB, {took:.2f} s")
PY
