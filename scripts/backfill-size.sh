#!/usr/bin/env bash
# What a 28-day backfill costs, for the README's "Bring your history" table: a 28-day archive
# of the default simulated tenant (12 workspaces, 400 users) is written once, `backfill
# --replay` turns it into OpenMetrics at each step, and promtool turns each file into blocks.
# For every run it prints wall time, peak RSS (ru_maxrss, as scripts/bench-memory.sh measures
# it) and the peak of anonymous memory (RssAnon, sampled from /proc every 0.1 s): promtool
# maps its input file, so its ru_maxrss also counts the file's pages it has touched, which the
# kernel can drop at will; RssAnon is what it needs.
#
# promtool reads the whole file once for its time range, then once per block
# (cmd/promtool/backfill.go), so its time grows with file size × blocks: a run whose passes
# would read more than PROMTOOL_MAX_GB (default 100) is skipped and its estimate printed.
#
# Usage: scripts/backfill-size.sh [EVENTS] [STEPS] [MAX_BLOCK_DURATIONS]
#   EVENTS               events over the 28 days (default 1000000: about 45,000 a weekday,
#                        110 per user of the default tenant, the busy end for 400 users)
#   STEPS                backfill steps, comma-separated (default 1h,5m,1m)
#   MAX_BLOCK_DURATIONS  promtool --max-block-duration values, comma-separated; "default" is
#                        none, 2h blocks (default: default,24h,672h)
# Needs promtool on PATH (Debian's `prometheus` package) and free disk under TMPDIR for the
# archive (~1.1 KB per event) and the largest file (~185 bytes per sample: 26 GB at 1m).
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-1000000}"
steps="${2:-1h,5m,1m}"
durations="${3:-default,24h,672h}"
command -v promtool >/dev/null || { echo "promtool is not on PATH (apt-get install prometheus)" >&2; exit 2; }
# BIN names an already built binary (skipping the build, e.g. while other builds hold cargo's lock).
bin="${BIN:-target/release/powerbi-exporter}"
[ -n "${BIN:-}" ] || cargo build --release --quiet
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# A fixed end (2026-11-20T00:00:00Z) so every run writes the same archive.
"$bin" simulate --days 28 --events "$events" --end 1795132800 --format pages --out "$dir/archive.json"
echo "archive: $events events over 28 days, $(du -m "$dir/archive.json" | cut -f1) MB"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo); $(promtool --version 2>&1 | head -1); $(date -u +%F)"
PROMTOOL_MAX_GB="${PROMTOOL_MAX_GB:-100}" python3 - "$bin" "$dir" "$steps" "$durations" <<'PY'
import os, re, shutil, subprocess, sys, threading, time

bin, work, steps, durations = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4].split(",")
max_read = float(os.environ["PROMTOOL_MAX_GB"]) * 1e9
archive = os.path.join(work, "archive.json")
# The target labels of deploy/prometheus/prometheus.yml's job, as the live scrape adds them.
labels = ["--label", "job=powerbi-exporter", "--label", "instance=localhost:10195",
          "--label", "tenant=contoso"]
UNITS = {"ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text):
    return sum(float(n) * UNITS[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d)", text))


def block_seconds(max_block):
    """promtool's getCompatibleBlockDuration: the longest of 2h·3^k (k < 10) not above it."""
    ranges = [7200 * 3**k for k in range(10)]
    if max_block == "default" or seconds(max_block) <= 7200:
        return 7200
    fitting = [r for r in ranges if r <= seconds(max_block)]
    return fitting[-1]


def rss_anon_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(args, output):
    """Runs args to the end, output to a file: (wall s, ru_maxrss MB, peak RssAnon MB)."""
    start = time.monotonic()
    with open(output, "wb") as out:
        child = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    peak_anon = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak_anon[0] = max(peak_anon[0], rss_anon_kb(child.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    took = time.monotonic() - start
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(args)} failed:\n{open(output, errors='replace').read()[-4000:]}")
    return took, usage.ru_maxrss / 1024, peak_anon[0] / 1024


def promtool(path, max_block):
    out, listing = os.path.join(work, "tsdb"), os.path.join(work, "promtool.out")
    shutil.rmtree(out, ignore_errors=True)
    flags = [] if max_block == "default" else [f"--max-block-duration={max_block}"]
    took, rss, anon = run(["promtool", "tsdb", "create-blocks-from", *flags, "openmetrics",
                           path, out], listing)
    with open(listing) as text:
        # ULID, min time, max time, duration, samples, chunks, series, size.
        rows = [line.split() for line in text if re.match(r"^[0-9A-Z]{26}\s", line)]
    size = sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(out) for f in files)
    shutil.rmtree(out)
    return took, rss, anon, len(rows), sum(int(r[4]) for r in rows), size


print()
print("| step | series | samples | file | backfill: time, peak RSS | promtool blocks "
      "| promtool: time, peak RSS (anonymous) | blocks on disk |")
print("|---|---|---|---|---|---|---|---|")
for step in steps:
    path, log = os.path.join(work, f"backfill-{step}.om"), os.path.join(work, "backfill.log")
    took, rss, _ = run([bin, "backfill", "--replay", archive, "--out", path, "--step", step,
                        *labels], log)
    # "Wrote N samples of S series at I instants (E events read) to FILE (B bytes)."
    wrote = re.search(r"Wrote (\d+) samples of (\d+) series", open(log).read())
    samples, series = int(wrote[1]), int(wrote[2])
    size = os.path.getsize(path)
    head = (f"| {step} | {series:,} | {samples:,} | {size / 1e6:,.0f} MB "
            f"| {took:.0f} s, {rss:.0f} MB ")
    for max_block in durations:
        block = block_seconds(max_block)
        passes = 1 + -(-28 * 86400 // block)
        name = "2h" if max_block == "default" else f"{block / 3600:.0f}h ({max_block})"
        if passes * size > max_read:
            print(f"{head}| {name} | not run: ≈ {passes} passes over {size / 1e9:.1f} GB | |",
                  flush=True)
            continue
        ptook, prss, panon, blocks, psamples, tsdb = promtool(path, max_block)
        # promtool's count of what it read is the check on the writer's own.
        assert psamples == samples, f"promtool read {psamples} samples, backfill wrote {samples}"
        print(f"{head}| {blocks} × {name} | {ptook:.0f} s, {prss:.0f} MB ({panon:.0f} MB) "
              f"| {tsdb / 1e6:,.0f} MB |", flush=True)
    os.remove(path)
PY
