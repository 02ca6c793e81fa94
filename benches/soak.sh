#!/usr/bin/env bash
# Soak benchmark: runs scenarios/soak.toml (2,000 clients, faults on) and
# samples the harness's RSS (and the built-in target's) every INTERVAL
# seconds, then prints a table. Flat harness RSS over the hold means no
# growth with run length. Not a test: numbers for the README.
#
#   benches/soak.sh                 # the full 10-minute soak
#   DURATION=3m benches/soak.sh     # a shorter one
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10m}
INTERVAL=${INTERVAL:-30}
OUT=${OUT:-$(mktemp -d /tmp/stampede-soak.XXXXXX)}
mkdir -p "$OUT"
# BIN=path runs an already built binary instead of building one.
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
fi
bin=${BIN:-target/release/stampede}
$bin run scenarios/soak.toml --set "duration=$DURATION" --quiet --no-report --out "$OUT/run" \
    >"$OUT/stdout" 2>"$OUT/stderr" &
pid=$!
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
start=$(date +%s)
printf '%8s %16s %16s %12s\n' elapsed_s harness_rss_mib target_rss_mib connections
while kill -0 "$pid" 2>/dev/null; do
    sleep "$INTERVAL"
    kill -0 "$pid" 2>/dev/null || break
    now=$(( $(date +%s) - start ))
    target=$(pgrep -P "$pid" | head -1 || true)
    conns=$(tail -n 5 "$OUT/run/timeseries.csv" 2>/dev/null \
        | awk -F, '{s += $8} END {print s + 0}')
    printf '%8d %16.1f %16.1f %12s\n' "$now" \
        "$(echo "$(rss_kib "$pid") / 1024" | bc -l)" \
        "$(echo "$(rss_kib "${target:-0}") / 1024" | bc -l)" "$conns"
done
wait "$pid" && code=0 || code=$?
python3 - "$OUT/run" "$code" <<'PY'
import csv, json, sys
run, code = sys.argv[1], sys.argv[2]
info = json.load(open(f"{run}/run.json"))
plan = info["plan"]
planned = plan["ramp_up_s"] + plan["duration_s"] + plan["drain_s"]
print(f"exit code {code}, status {info['status']}, run {info['duration_s']:.1f} s (phase planned {planned:.0f} s)")
for r in csv.DictReader(open(f"{run}/summary.csv")):
    kinds = {k[7:]: v for k, v in r.items() if k.startswith("errors_") and v != "0"}
    print(f"{r['group']:>10} delivered {r['delivered']:>8} lost {r['lost']:>6} errors {r['errors']:>6} {kinds}")
print(f"run folder {run}")
PY
