#!/usr/bin/env bash
# Cost as the work grows: half WebSocket, half SSE subscribers of the
# reference server at each size, RATE events per second per client (a
# channel per 500 clients; default 0.2, so 100,000 subscribers take 20,000
# deliveries a second: at 1 event/s the reference server and stampede
# together need more than this 2-core machine's two cores at 100,000),
# 30 s hold, `--processes auto`.
# Prints stampede's CPU per 100k deliveries (whole run: ramp included) and
# its peak RSS per connection (all processes, baselines included), with
# delivery p99 and lost; and the marginal cost of each step up from the
# size before (what any run costs whatever its size, a process's baseline
# RSS and per-second work, left out). Flat marginal columns mean cost
# linear in the work.
#
#   bash benches/scale.sh                  # 1000 10000 50000 100000
#   SIZES="1000 10000" RATE=1 bash benches/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-1000 10000 50000 100000}
HOLD=${HOLD:-30s}
RATE=${RATE:-0.2}
if [ -n "${STAMPEDE:-}" ]; then BIN=$STAMPEDE; else cargo build --release --quiet; BIN=target/release/stampede; fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for n in $SIZES; do
    half=$((n / 2))
    channels=$(( (n + 499) / 500 ))
    ramp=$(( n / 1250 )); [ "$ramp" -lt 5 ] && ramp=5
    cat > "$TMP/s.toml" <<TOML
name = "scale-$n"
duration = "$HOLD"
ramp_up = "${ramp}s"
warmup = "5s"
drain = "3s"
mode = "concurrent"
[publisher]
rate = $(python3 -c "print($channels * $RATE)")
channels = $channels
payload_bytes = 64
[[groups]]
transport = "websocket"
clients = $half
ping_interval = "30s"
[[groups]]
transport = "sse"
clients = $half
TOML
    $BIN run "$TMP/s.toml" --processes auto --quiet --no-report --out "$TMP/run-$n" >/dev/null
done
python3 - "$TMP" $SIZES <<'PY'
import csv, sys
tmp, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
print("| subscribers | CPU s / 100k deliveries | marginal CPU s / 100k | stampede RSS KiB / connection | marginal RSS KiB / connection | delivery p99 ms (ws / sse) | lost | load generator saturated |")
print("|---:|---:|---:|---:|---:|---:|---:|---|")
prev = None
for n in sizes:
    d = f"{tmp}/run-{n}"
    rows = list(csv.DictReader(open(f"{d}/summary.csv")))
    dels = sum(int(r["deliveries"]) for r in csv.DictReader(open(f"{d}/timeseries.csv")))
    cpu = float(rows[0]["client_cpu_s"])    # whole-run value, repeated per group
    rss = float(rows[0]["client_rss_peak_mb"]) * 1024
    p99 = " / ".join(r["delivery_p99_ms"] for r in rows)
    lost = sum(int(r["lost"]) for r in rows)
    sat = ", ".join(sorted({r.get("loadgen_saturated", "") for r in rows}))
    # Marginal: the step from the size before, which leaves out what any
    # run costs whatever its size (a process's baseline, per-second work).
    if prev:
        mcpu = f"{(cpu - prev[0]) / (dels - prev[1]) * 1e5:.2f}"
        mrss = f"{(rss - prev[2]) / (n - prev[3]):.1f}"
    else:
        mcpu = mrss = "–"
    print(f"| {n:,} | {cpu / dels * 1e5:.2f} | {mcpu} | {rss / n:.1f} | {mrss} | {p99} | {lost} | {sat} |")
    prev = (cpu, dels, rss, n)
PY
